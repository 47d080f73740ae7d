/** Change events the stores deliver, in batches. */
import type { Kind } from "./kinds.ts";
import type { ConfigObject, ObjectKey } from "./object.ts";

interface EventBase<K extends Kind> {
  readonly kind: K;
  readonly key: ObjectKey;
}
export interface AddedEvent<K extends Kind> extends EventBase<K> {
  readonly type: "added";
  readonly new: ConfigObject<K>;
  readonly old?: undefined;
}
export interface UpdatedEvent<K extends Kind> extends EventBase<K> {
  readonly type: "updated";
  readonly old: ConfigObject<K>;
  readonly new: ConfigObject<K>;
}
export interface DeletedEvent<K extends Kind> extends EventBase<K> {
  readonly type: "deleted";
  /** The object as last seen. */
  readonly old: ConfigObject<K>;
  readonly new?: undefined;
}

/** One change to one object; checking `kind` narrows the objects' types. */
export type ConfigEvent<K extends Kind = Kind> = {
  [P in K]: AddedEvent<P> | UpdatedEvent<P> | DeletedEvent<P>;
}[K];

export interface ConfigBatch {
  /** Changes in the order they happened; one object appears at most once per batch. */
  readonly events: readonly ConfigEvent[];
  /**
   * True for the first batch a subscriber receives: every object present at sync time as
   * `added` (possibly none). Later batches hold only changes.
   */
  readonly initial: boolean;
}

export type ConfigHandler = (batch: ConfigBatch) => void;
