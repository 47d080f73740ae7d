/**
 * Go `strconv.ParseBool`, which istiod uses for boolean labels and annotations
 * (`istio.io/dry-run`, `istio.io/ingress-use-waypoint`).
 */
export function parseBool(text: string): boolean | undefined {
  switch (text) {
    case "1":
    case "t":
    case "T":
    case "true":
    case "TRUE":
    case "True":
      return true;
    case "0":
    case "f":
    case "F":
    case "false":
    case "FALSE":
    case "False":
      return false;
    default:
      return undefined;
  }
}
