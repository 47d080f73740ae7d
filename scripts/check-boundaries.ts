/**
 * Enforces the code layout of DESIGN.md §5: `src/lib` imports only `src/lib`; components never
 * import each other (only the CLI, the composition root, may import a component's `index.ts`);
 * `src/testing` imports only `src/lib`; and no import cycles anywhere under `src`.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

const root = resolve(import.meta.dirname, "..");
const src = join(root, "src");

function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out;
}

const importRe =
  /(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(importRe)) {
    const spec = m[1] ?? m[2];
    if (spec !== undefined && spec.startsWith(".")) {
      const target = resolve(dirname(file), spec);
      out.push(target);
    }
  }
  return out;
}

/** Top-level area of a file under src: "lib", "testing", "cli", or a component name. */
function area(file: string): string {
  return relative(src, file).split(sep)[0] ?? "";
}

const problems: string[] = [];
const files = walk(src);
const graph = new Map<string, string[]>();

for (const file of files) {
  const from = area(file);
  const deps = importsOf(file);
  graph.set(
    file,
    deps.filter((d) => d.startsWith(src + sep)),
  );
  const isTest = file.endsWith(".test.ts");
  for (const dep of deps) {
    const rel = relative(root, file);
    if (!dep.startsWith(src + sep)) {
      problems.push(`${rel}: imports ${relative(root, dep)}, outside src/`);
      continue;
    }
    try {
      statSync(dep);
    } catch {
      problems.push(`${rel}: imports ${relative(root, dep)}, which does not exist`);
      continue;
    }
    const to = area(dep);
    if (to === from) continue;
    if (to === "lib") continue;
    // Unit tests may use the shared fakes in src/testing.
    if (to === "testing" && isTest) continue;
    if (from === "lib") {
      problems.push(`${rel}: src/lib may import only src/lib, not src/${to}`);
    } else if (from === "testing") {
      problems.push(`${rel}: src/testing may import only src/lib, not src/${to}`);
    } else if (from === "cli" && dep === join(src, to, "index.ts")) {
      continue; // the CLI composes components through their public face
    } else {
      problems.push(
        `${rel}: component "${from}" imports ${relative(root, dep)}; components share code only through src/lib`,
      );
    }
  }
}

// Cycle detection (iterative DFS with colouring).
const state = new Map<string, 1 | 2>();
const reported = new Set<string>();
for (const start of graph.keys()) {
  if (state.has(start)) continue;
  const stack: { node: string; i: number }[] = [{ node: start, i: 0 }];
  const path: string[] = [start];
  state.set(start, 1);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const deps = graph.get(top.node) ?? [];
    if (top.i < deps.length) {
      const next = deps[top.i++]!;
      const s = state.get(next);
      if (s === 1) {
        const cycle = path
          .slice(path.indexOf(next))
          .concat(next)
          .map((f) => relative(root, f));
        const key = [...cycle].sort().join("|");
        if (!reported.has(key)) {
          reported.add(key);
          problems.push(`import cycle: ${cycle.join(" -> ")}`);
        }
      } else if (s === undefined && graph.has(next)) {
        state.set(next, 1);
        stack.push({ node: next, i: 0 });
        path.push(next);
      }
    } else {
      state.set(top.node, 2);
      stack.pop();
      path.pop();
    }
  }
}

if (problems.length > 0) {
  console.error(`boundary check: ${problems.length} problem(s)`);
  for (const p of problems) console.error(`  ${p}`);
  process.exit(1);
}
console.log(`boundary check: ${files.length} files, no problems`);
