/**
 * Static mode (`LOCAL_XDS_PATH` / `LOCAL_XDS`): the YAML is read once, validated in full with
 * the same conversion as pushed config, and applied; a bad file stops start-up with every
 * problem listed.
 */
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { AmbientError } from "../../lib/errors.ts";
import type { LocalXdsSource } from "../config.ts";
import { parseLocalConfig, type LocalConfig } from "../state/index.ts";

export interface LoadedLocalXds {
  readonly config: LocalConfig;
  /** The document as written, for config_dump's `staticConfig`. */
  readonly document: unknown;
}

export async function loadLocalXds(source: LocalXdsSource): Promise<LoadedLocalXds> {
  const where = source.kind === "file" ? source.path : "LOCAL_XDS";
  let text: string;
  if (source.kind === "file") {
    try {
      text = await readFile(source.path, "utf8");
    } catch (err) {
      throw new AmbientError(
        "ZTUNNEL_LOCAL_XDS",
        `cannot read the local config ${source.path} (LOCAL_XDS_PATH): ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
  } else {
    text = source.yaml;
  }
  const parsed = parseLocalConfig(text);
  if (!parsed.ok) {
    throw new AmbientError(
      "ZTUNNEL_LOCAL_XDS",
      `the local config ${where} is invalid:\n  ${parsed.reason.join("\n  ")}`,
    );
  }
  return { config: parsed.value, document: (parseYaml(text) as unknown) ?? {} };
}
