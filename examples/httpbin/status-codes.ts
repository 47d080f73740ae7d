/**
 * `/status/<codes>`: one code (`418`), a uniform choice (`200,500`) or a weighted one
 * (`200:0.9,500:0.1`), as httpbin accepts them. Pure; the caller supplies the random number.
 */
export interface StatusChoice {
  readonly code: number;
  readonly weight: number;
}

export function parseStatusCodes(
  spec: string,
): { ok: true; choices: readonly StatusChoice[] } | { ok: false; reason: string } {
  const choices: StatusChoice[] = [];
  for (const raw of spec.split(",")) {
    const part = raw.trim();
    const [codeText, weightText, extra] = part.split(":");
    if (codeText === undefined || extra !== undefined || !/^\d{3}$/.test(codeText)) {
      return { ok: false, reason: `invalid status code "${part}"` };
    }
    const code = Number(codeText);
    // 1xx are not final answers; a handler cannot send one as the response status.
    if (code < 200 || code > 599) {
      return { ok: false, reason: `status code ${code} is outside 200..599` };
    }
    let weight = 1;
    if (weightText !== undefined) {
      weight = Number(weightText);
      if (weightText.trim() === "" || !Number.isFinite(weight) || weight < 0) {
        return { ok: false, reason: `invalid weight "${weightText}" for status ${code}` };
      }
    }
    choices.push({ code, weight });
  }
  if (choices.reduce((s, c) => s + c.weight, 0) <= 0) {
    return { ok: false, reason: "the weights add up to zero" };
  }
  return { ok: true, choices };
}

/** Picks a code; `random` is in [0, 1). */
export function pickStatus(choices: readonly StatusChoice[], random: number): number {
  const total = choices.reduce((s, c) => s + c.weight, 0);
  let x = random * total;
  for (const c of choices) {
    if (x < c.weight) return c.code;
    x -= c.weight;
  }
  // Rounding can leave x a hair above the last weight.
  return choices.findLast((c) => c.weight > 0)?.code ?? 200;
}
