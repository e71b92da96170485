import { keepPreviousData } from "@tanstack/react-query";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useState } from "react";
import { CertificateService } from "../../../gen/dynroute/v1/certificate_pb.js";
import { CertificateForm } from "../components/CertificateForm";
import { CertificateSource } from "../components/CertificateSource";
import { ConfirmButton } from "../components/ConfirmButton";
import { ErrorNote } from "../components/ErrorNote";
import { Expiry } from "../components/Expiry";
import { PageHeading } from "../components/PageHeading";
import { formatTime } from "../format";
import { canEdit, useSession } from "../session";
import { useInvalidate } from "../useInvalidate";
import { PlainList } from "../components/PlainList";
import { Pager, usePageTokens } from "../components/Pager";

/** The tenant's TLS certificates with their expiry; editors upload, replace and delete them. */
export function CertificatesPage() {
  const { session } = useSession();
  const editable = canEdit(session.role);
  // The name whose certificate the form replaces; "" uploads a new one.
  const [replacing, setReplacing] = useState("");
  const pages = usePageTokens();
  const list = useQuery(CertificateService.method.listCertificates, { tenantId: session.tenant, pageToken: pages.token }, { placeholderData: keepPreviousData });
  const invalidate = useInvalidate(CertificateService);
  const remove = useMutation(CertificateService.method.deleteCertificate, { onSuccess: invalidate });
  const certificates = list.data?.certificates;

  return (
    <>
      <PageHeading title={`Certificates of ${session.tenant}`} />
      <p className="hint">Routers serve each certificate to clients asking for its name (SNI). Mappings choose automatic (ACME) or manual certificates.</p>
      {!editable && <p className="hint">This key can read certificates but not change them.</p>}
      <ErrorNote error={list.error} prefix="Could not list the certificates" />
      <ErrorNote error={remove.error} prefix="Not deleted" />
      {certificates?.length === 0 && <p role="status">No certificates.</p>}
      {certificates && certificates.length > 0 && (
        <table className="certificates">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">DNS names</th>
              <th scope="col">Issuer</th>
              <th scope="col">Valid until</th>
              <th scope="col">Source</th>
              <th scope="col">Updated</th>
              {editable && (
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {certificates.map((c) => (
              <tr key={c.name}>
                <th scope="row" data-label="Name">
                  {c.name}
                </th>
                <td data-label="DNS names">
                  <PlainList items={c.dnsNames} />
                </td>
                <td data-label="Issuer">
                  {c.issuer}
                  <details>
                    <summary>SHA-256</summary>
                    <code className="fingerprint">{c.fingerprintSha256}</code>
                  </details>
                </td>
                <td data-label="Valid until">{c.expireTime && <Expiry time={c.expireTime} />}</td>
                <td data-label="Source">
                  <CertificateSource certificate={c} />
                </td>
                <td data-label="Updated">
                  {formatTime(c.updateTime)} · revision {String(c.revision)}
                </td>
                {editable && (
                  <td>
                    <div className="actions">
                      <button type="button" onClick={() => setReplacing(c.name)} aria-label={`Replace ${c.name}`}>
                        Replace
                      </button>
                      <ConfirmButton label="Delete" question={`Delete the certificate of ${c.name}? Routers stop serving it.`} confirmLabel="Delete" busy={remove.isPending} onConfirm={() => remove.mutate({ tenantId: session.tenant, name: c.name })} />
                    </div>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {list.data && (pages.index > 0 || list.data.nextPageToken) && <Pager pages={pages} nextPageToken={list.data.nextPageToken} />}
      {editable && (
        <>
          {replacing && (
            <p>
              <button type="button" className="link-button" onClick={() => setReplacing("")}>
                Upload another name instead
              </button>
            </p>
          )}
          <CertificateForm key={replacing} tenant={session.tenant} name={replacing} />
        </>
      )}
    </>
  );
}
