/**
 * An owned network-namespace fd, closed exactly once. Whoever holds a reference calls `release()`
 * when done; the fd closes with the last release. The agent keeps one reference per enrolled pod
 * and one per queued `add` (so a pod removed while its add waits in a queue cannot close the fd
 * under the send, or let the number be reused for something else); ztunnel keeps one per proxy.
 */
import { AmbientError } from "../errors.ts";
import { closeFd, netnsId, openNetns, sameNetns, type NetnsId } from "../net/index.ts";

export class NetnsHandle {
  readonly fd: number;
  /** The namespace's identity (nsfs device and inode), read once when the handle is made. */
  readonly id: NetnsId;
  readonly #close: (fd: number) => void;
  #refs = 1;

  private constructor(fd: number, id: NetnsId, close: (fd: number) => void) {
    this.fd = fd;
    this.id = id;
    this.#close = close;
  }

  /**
   * Takes ownership of `fd` (one reference). If its identity cannot be read the fd is closed and
   * the error thrown, so the caller never has to clean up after a failed adopt.
   */
  static adopt(fd: number, close: (fd: number) => void = closeFd): NetnsHandle {
    let id: NetnsId;
    try {
      id = netnsId(fd);
    } catch (err) {
      try {
        close(fd);
      } catch {
        // Not an open fd at all (EBADF): nothing to close; the identity error says enough.
      }
      throw err;
    }
    return new NetnsHandle(fd, id, close);
  }

  /** Opens `path` (/run/netns/NAME, /proc/PID/ns/net, ...) and owns the fd. */
  static open(path: string, open: (path: string) => number = openNetns): NetnsHandle {
    return NetnsHandle.adopt(open(path));
  }

  get closed(): boolean {
    return this.#refs === 0;
  }

  /** Adds a reference; each needs its own release(). */
  retain(): this {
    if (this.#refs === 0) {
      throw new AmbientError("ERR_NETNS_CLOSED", `netns fd ${this.fd} was already closed`);
    }
    this.#refs++;
    return this;
  }

  /** Drops a reference, closing the fd with the last one. A release too many is a bug: it throws. */
  release(): void {
    if (this.#refs === 0) {
      throw new AmbientError(
        "ERR_NETNS_CLOSED",
        `netns fd ${this.fd} released after it was closed`,
      );
    }
    this.#refs--;
    if (this.#refs === 0) this.#close(this.fd);
  }

  /** True when `other` is the same network namespace (not merely the same fd). */
  sameNamespace(other: NetnsHandle | NetnsId): boolean {
    return sameNetns(this.id, other instanceof NetnsHandle ? other.id : other);
  }
}
