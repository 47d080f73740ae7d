/**
 * Name and label syntax the Kubernetes API server enforces (apimachinery's validation package),
 * written out here because the OpenAPI schemas do not carry it.
 */

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1035Label = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const qualifiedName = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** undefined when valid, else the reason. */
export function checkDns1123Label(s: string): string | undefined {
  if (s.length > 63) return "must be no more than 63 characters";
  if (!dns1123Label.test(s)) {
    return "must be a lowercase RFC 1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit";
  }
  return undefined;
}

export function checkDns1035Label(s: string): string | undefined {
  if (s.length > 63) return "must be no more than 63 characters";
  if (!dns1035Label.test(s)) {
    return "must be an RFC 1035 label: lower-case letters, digits and '-', starting with a letter and ending with a letter or digit";
  }
  return undefined;
}

export function checkDns1123Subdomain(s: string): string | undefined {
  if (s.length > 253) return "must be no more than 253 characters";
  if (s === "" || !s.split(".").every((part) => dns1123Label.test(part))) {
    return "must be a lowercase RFC 1123 subdomain: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit";
  }
  return undefined;
}

export function checkName(
  rule: "dns1123-subdomain" | "dns1123-label" | "dns1035-label",
  s: string,
): string | undefined {
  switch (rule) {
    case "dns1123-subdomain":
      return checkDns1123Subdomain(s);
    case "dns1123-label":
      return checkDns1123Label(s);
    case "dns1035-label":
      return checkDns1035Label(s);
  }
}

/** Label and annotation keys: `[prefix/]name`, prefix a DNS subdomain, name ≤ 63 characters. */
export function checkQualifiedName(key: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  const name = slash === -1 ? key : key.slice(slash + 1);
  if (prefix !== undefined) {
    if (prefix === "") return "prefix before '/' must not be empty";
    const bad = checkDns1123Subdomain(prefix);
    if (bad !== undefined) return `prefix "${prefix}" ${bad}`;
  }
  if (name === "") return "name part must not be empty";
  if (name.length > 63) return "name part must be no more than 63 characters";
  if (!qualifiedName.test(name)) {
    return "name part must consist of letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
  }
  return undefined;
}

export function checkLabelValue(v: string): string | undefined {
  if (v.length > 63) return "must be no more than 63 characters";
  if (!labelValue.test(v)) {
    return "must be empty or consist of letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
  }
  return undefined;
}

/** IANA service names, as Kubernetes accepts for named ports (`targetPort: http`). */
export function checkPortName(s: string): string | undefined {
  if (s.length > 15) return "must be no more than 15 characters";
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(s)) {
    return "must contain only lower-case letters, digits and '-', starting and ending with a letter or digit";
  }
  if (s.includes("--")) return "must not contain consecutive '-'";
  if (!/[a-z]/.test(s)) return "must contain at least one letter";
  return undefined;
}
