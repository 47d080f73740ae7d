/**
 * Static mode's certificates (`FAKE_CA`): a CA in this process signs the CSRs, no network. Its
 * root is kept in `LOCAL_CA_DIR` (created on first start, then reused, so several ztunnels can
 * share one trust root) or only in memory.
 */
import {
  CertificateAuthority,
  createCsr,
  type FetchCertificate,
} from "../../lib/identity/index.ts";
import { certificateFromCaResponse } from "./chain.ts";

export interface LocalCa {
  readonly ca: CertificateAuthority;
  readonly fetch: FetchCertificate;
}

export async function createLocalCa(options: {
  readonly dir: string | undefined;
  readonly trustDomain: string;
  readonly ttlSeconds: number;
}): Promise<LocalCa> {
  const caOptions = { trustDomain: options.trustDomain, rootCommonName: "ztunnel local CA" };
  const ca =
    options.dir !== undefined
      ? await CertificateAuthority.loadOrCreate(options.dir, caOptions)
      : await CertificateAuthority.create(caOptions);
  const fetch: FetchCertificate = async (identity) => {
    const { csrPem, privateKeyPem } = await createCsr(identity);
    const chain = await ca.sign(csrPem, { identity, ttlSeconds: options.ttlSeconds });
    // Same shape as istiod's answer: leaf first, root last.
    return certificateFromCaResponse({ identity, privateKeyPem, certChain: chain });
  };
  return { ca, fetch };
}
