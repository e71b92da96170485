import { useMutation } from "@connectrpc/connect-query";
import { useEffect, useRef, useState, type FormEvent } from "react";
import { CertificateService } from "../../../gen/dynroute/v1/certificate_pb.js";
import { fieldViolations } from "../errors";
import { useInvalidate } from "../useInvalidate";
import { ErrorNote } from "./ErrorNote";
import { Expiry } from "./Expiry";
import { FieldErrors, invalidProps } from "./FieldErrors";
import { PemInput } from "./PemInput";

/** Uploads the certificate of a name, or replaces the one stored (`name` given: the form opens for it, focused). */
export function CertificateForm({ tenant, name: replacing }: { tenant: string; name: string }) {
  const [name, setName] = useState(replacing);
  const [chain, setChain] = useState("");
  const [key, setKey] = useState("");
  const invalidate = useInvalidate(CertificateService);
  const put = useMutation(CertificateService.method.putCertificate, {
    onSuccess: async () => {
      // The key is not kept in the page once the daemon has it.
      setKey("");
      setChain("");
      await invalidate();
    },
  });
  const errors = fieldViolations(put.error);
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    if (replacing) heading.current?.focus();
  }, [replacing]);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    put.mutate({ tenantId: tenant, name: name.trim(), certificateChain: chain, privateKey: key });
  };
  const stored = put.data?.certificate;

  return (
    <form className="panel-form" onSubmit={submit} noValidate aria-labelledby="certificate-form-title">
      <h2 id="certificate-form-title" tabIndex={-1} ref={heading}>
        {replacing ? `Replace the certificate of ${replacing}` : "Upload a certificate"}
      </h2>
      <fieldset disabled={put.isPending} className="plain-fieldset">
        <div className="field">
          <label htmlFor="certificate-name">Name</label>
          <input id="certificate-name" value={name} onChange={(e) => setName(e.target.value)} placeholder="www.example.org or *.example.org" spellCheck={false} autoComplete="off" aria-describedby="certificate-name-hint" {...invalidProps("certificate-name-error", errors.get("name"))} />
          <p id="certificate-name-hint" className="hint">
            The host (or wildcard) it is served for: a name this tenant maps, or one under a name it maps.
          </p>
          <FieldErrors id="certificate-name-error" messages={errors.get("name")} />
        </div>
        <PemInput id="certificate-chain" label="Certificate chain" hint="PEM, leaf first, then the intermediates clients need." value={chain} onChange={setChain} messages={errors.get("certificate_chain")} />
        <PemInput
          id="certificate-key"
          label="Private key"
          hint="PEM (PKCS#8, PKCS#1 or SEC1), unencrypted. Write-only: the daemon never shows it back, to anyone; replacing the certificate needs the key again."
          value={key}
          onChange={setKey}
          messages={errors.get("private_key")}
        />
      </fieldset>
      {errors.size > 0 ? (
        <p className="error-note" role="alert">
          Not stored: correct the marked fields.
        </p>
      ) : (
        <ErrorNote error={put.error} prefix="Not stored" />
      )}
      {stored && (
        <p role="status">
          Stored the certificate of {stored.name}, revision {String(stored.revision)}; {stored.expireTime && <Expiry time={stored.expireTime} />}.
        </p>
      )}
      <button type="submit" className="primary" disabled={put.isPending}>
        {put.isPending ? "Storing…" : replacing ? "Replace certificate" : "Upload certificate"}
      </button>
    </form>
  );
}
