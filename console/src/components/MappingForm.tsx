import { Code } from "@connectrpc/connect";
import { useMutation } from "@connectrpc/connect-query";
import { useState, type FormEvent } from "react";
import { AuditService } from "../../../gen/dynroute/v1/audit_pb.js";
import { MappingService, type Mapping } from "../../../gen/dynroute/v1/mapping_pb.js";
import { draftOf, mappingOf } from "../draft";
import { fieldViolations, hasCode } from "../errors";
import { href, navigate } from "../route";
import { useInvalidate } from "../useInvalidate";
import { BackendsEditor } from "./BackendsEditor";
import { ConfirmButton } from "./ConfirmButton";
import { ConflictPanel } from "./ConflictPanel";
import { ErrorNote } from "./ErrorNote";
import { FieldErrors, invalidProps } from "./FieldErrors";
import { LabelsEditor } from "./LabelsEditor";
import { TLS_MODES } from "./TlsSummary";

interface Props {
  tenant: string;
  /** The mapping as read (absent: create a new one). */
  initial: Mapping | undefined;
  readOnly?: boolean;
  /** Reads the mapping as it is now (to show a conflicting change). */
  refetch?(): Promise<Mapping | undefined>;
}

/**
 * Create or change a mapping. A change names the revision it started from, so a
 * change someone made meanwhile is shown instead of overwritten.
 */
export function MappingForm({ tenant, initial, readOnly = false, refetch }: Props) {
  const [draft, setDraft] = useState(() => draftOf(initial));
  const [base, setBase] = useState(initial);
  const [theirs, setTheirs] = useState<Mapping | undefined>();
  // Every mapping list, mapping and history page.
  const invalidate = useInvalidate(MappingService, AuditService);
  const done = async () => {
    await invalidate();
    navigate("mappings");
  };
  const create = useMutation(MappingService.method.createMapping, { onSuccess: done });
  const update = useMutation(MappingService.method.updateMapping, {
    onSuccess: done,
    onError: async (err) => {
      if (hasCode(err, Code.FailedPrecondition)) setTheirs(await refetch?.());
    },
  });
  const remove = useMutation(MappingService.method.deleteMapping, { onSuccess: done });
  const saving = create.isPending || update.isPending;
  const saveError = base ? update.error : create.error;
  const errors = fieldViolations(saveError);

  const save = (expectedRevision = base?.revision) => {
    const mapping = mappingOf(draft);
    if (!base) create.mutate({ tenantId: tenant, mapping });
    else update.mutate({ tenantId: tenant, domain: base.domain, mapping, expectedRevision });
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    save();
  };
  const resolve = (choice: "reload" | "overwrite") => {
    if (!theirs) return;
    setBase(theirs);
    setTheirs(undefined);
    update.reset();
    if (choice === "reload") setDraft(draftOf(theirs));
    else save(theirs.revision);
  };

  return (
    <form className="mapping-form" onSubmit={submit} noValidate>
      <fieldset disabled={readOnly || saving} className="plain-fieldset">
        <div className="field">
          <label htmlFor="mapping-domain">Domain</label>
          <input id="mapping-domain" value={draft.domain} onChange={(e) => setDraft({ ...draft, domain: e.target.value })} placeholder="something.wmflabs.org" spellCheck={false} autoComplete="off" aria-describedby="mapping-domain-hint" {...invalidProps("mapping-domain-error", errors.get("domain"))} />
          <p id="mapping-domain-hint" className="hint">
            {base ? "Change it to rename the mapping." : "A host name, or *.name for every name under it."}
          </p>
          <FieldErrors id="mapping-domain-error" messages={errors.get("domain")} />
        </div>
        <BackendsEditor rows={draft.backends} onChange={(backends) => setDraft({ ...draft, backends })} errors={errors} />
        <LabelsEditor rows={draft.labels} onChange={(labels) => setDraft({ ...draft, labels })} errors={errors} />
        <div className="field">
          <label htmlFor="mapping-tls">TLS certificate</label>
          <select id="mapping-tls" value={draft.tls} onChange={(e) => setDraft({ ...draft, tls: Number(e.target.value) })} aria-describedby="mapping-tls-hint" {...invalidProps("mapping-tls-error", errors.get("tls"))}>
            {TLS_MODES.map((m) => (
              <option key={m.mode} value={m.mode}>
                {m.label}
              </option>
            ))}
          </select>
          <p id="mapping-tls-hint" className="hint">
            Automatic: the daemon orders and renews one over ACME (not for wildcards). Manual: upload one on the <a href={href("certificates")}>Certificates</a> page.
          </p>
          <FieldErrors id="mapping-tls-error" messages={errors.get("tls")} />
        </div>
        <div className="field checkbox-field">
          <input id="mapping-enabled" type="checkbox" checked={draft.enabled} onChange={(e) => setDraft({ ...draft, enabled: e.target.checked })} aria-describedby="mapping-enabled-hint" />
          <label htmlFor="mapping-enabled">Enabled</label>
          <p id="mapping-enabled-hint" className="hint">
            When off, routers answer this domain with 503 “disabled” and keep everything else as it is.
          </p>
        </div>
      </fieldset>
      {theirs ? (
        <ConflictPanel mine={base} theirs={theirs} onResolve={resolve} />
      ) : (
        errors.size === 0 && <ErrorNote error={saveError} prefix="Not saved" />
      )}
      {errors.size > 0 && (
        <p className="error-note" role="alert">
          Not saved: correct the marked fields.
        </p>
      )}
      {!readOnly && (
        <div className="actions">
          <button type="submit" className="primary" disabled={saving || theirs !== undefined}>
            {saving ? "Saving…" : base ? "Save changes" : "Create mapping"}
          </button>
          <a className="button" href="#/mappings">
            Cancel
          </a>
          {base && (
            <ConfirmButton
              label="Delete mapping"
              question={`Delete ${base.domain}? Routers stop serving it.`}
              confirmLabel="Delete"
              busy={remove.isPending}
              onConfirm={() => remove.mutate({ tenantId: tenant, domain: base.domain })}
            />
          )}
        </div>
      )}
      <ErrorNote error={remove.error} prefix="Not deleted" />
    </form>
  );
}
