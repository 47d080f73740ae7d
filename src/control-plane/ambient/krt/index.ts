/**
 * A small dependency-tracking collection engine in the spirit of istiod's `krt`: tables, derived
 * collections whose builds record what they read, and a graph that rebuilds only what changed.
 */
export { Table } from "./table.ts";
export type { Key, Predicate, Watched, Watcher } from "./table.ts";
export { Ctx, Derived, Graph } from "./derived.ts";
export type { DerivedSpec, Report, ReportLevel } from "./derived.ts";
