import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Server, status } from "@grpc/grpc-js";
import type { ServerUnaryCall, StatusObject } from "@grpc/grpc-js";
import { IstioCertificateService } from "../gen/istio/v1/auth/ca_pb.ts";
import { AmbientError } from "../errors.ts";
import {
  GrpcStatusError,
  addService,
  createGrpcServer,
  statusFromError,
  unaryHandler,
} from "./index.ts";

type Outcome = { err: Partial<StatusObject> | null; value?: string };

/** Runs a unary handler with a stand-in call and resolves with what it passed to its callback. */
function invoke(
  handler: ReturnType<typeof unaryHandler<string, string>>,
  request: string,
): Promise<Outcome> {
  return new Promise((resolve) => {
    const call = { request } as ServerUnaryCall<string, string>;
    handler(call, (err, value) => {
      resolve(err === null ? { err: null, value: value ?? "" } : { err });
    });
  });
}

describe("unaryHandler", () => {
  it("answers with the resolved value", async () => {
    const h = unaryHandler<string, string>((call) => Promise.resolve(`signed:${call.request}`));
    assert.deepEqual(await invoke(h, "csr"), { err: null, value: "signed:csr" });
  });

  it("maps a thrown GrpcStatusError to that status", async () => {
    const h = unaryHandler<string, string>(() => {
      throw new GrpcStatusError(status.UNAUTHENTICATED, "caller may not impersonate ns/sa");
    });
    assert.deepEqual(await invoke(h, "x"), {
      err: { code: status.UNAUTHENTICATED, details: "caller may not impersonate ns/sa" },
    });
  });

  it("maps a rejection to UNKNOWN with its message and never leaks an unhandled rejection", async () => {
    const h = unaryHandler<string, string>(() => Promise.reject(new Error("disk full")));
    assert.deepEqual(await invoke(h, "x"), { err: { code: status.UNKNOWN, details: "disk full" } });
    assert.deepEqual(statusFromError("plain"), { code: status.UNKNOWN, details: "plain" });
  });
});

describe("addService", () => {
  it("refuses a server without the decode guard", () => {
    const plain = new Server();
    assert.throws(
      () => addService(plain, IstioCertificateService, {}),
      (err: unknown) =>
        err instanceof AmbientError &&
        err.code === "ERR_GRPC_SERVER" &&
        /istio\.v1\.auth\.IstioCertificateService/.test(err.message),
    );
    const guarded = createGrpcServer();
    addService(guarded, IstioCertificateService, {});
    guarded.forceShutdown();
    plain.forceShutdown();
  });
});
