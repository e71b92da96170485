import { useMutation } from "@connectrpc/connect-query";
import { useState, type FormEvent } from "react";
import { TenantService, type Tenant } from "../../../gen/dynroute/v1/tenant_pb.js";
import { fieldViolations } from "../errors";
import { useInvalidate } from "../useInvalidate";
import { ErrorNote } from "./ErrorNote";
import { FieldErrors, invalidProps } from "./FieldErrors";
import { TenantUsage } from "./TenantUsage";

const UINT32_MAX = 4_294_967_295;

/** Admins: set a tenant's zones and mapping quota (all of its settings at once, as UpdateTenant does). */
export function TenantForm({ tenant }: { tenant: Tenant }) {
  const [zones, setZones] = useState(tenant.zones.join("\n"));
  const [quota, setQuota] = useState(String(tenant.mappingQuota));
  const [quotaProblem, setQuotaProblem] = useState("");
  const invalidate = useInvalidate(TenantService);
  const update = useMutation(TenantService.method.updateTenant, {
    onSuccess: async (res) => {
      // Show the zones as the daemon stored them (normalised, without duplicates).
      setZones(res.tenant?.zones.join("\n") ?? "");
      await invalidate();
    },
  });
  const errors = fieldViolations(update.error, "tenant");
  const sentZones = update.variables?.tenant?.zones ?? [];
  // The server names zones by index; say which one, since blank lines are not sent.
  const zoneMessages = [...(errors.get("zones") ?? []), ...sentZones.flatMap((z, i) => (errors.get(`zones[${i}]`) ?? []).map((m) => `${z}: ${m}`))];
  const quotaMessages = quotaProblem ? [quotaProblem] : errors.get("mapping_quota");

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const value = Number(quota.trim());
    // The browser's own number check is off (noValidate), so that the daemon's errors show the same way.
    if (!/^\d+$/.test(quota.trim()) || value > UINT32_MAX) {
      setQuotaProblem("must be a whole number, 0 for no limit");
      return;
    }
    setQuotaProblem("");
    update.mutate({
      tenantId: tenant.tenantId,
      tenant: {
        zones: zones
          .split("\n")
          .map((z) => z.trim())
          .filter((z) => z !== ""),
        mappingQuota: value,
      },
    });
  };

  return (
    <form className="panel-form" onSubmit={submit} noValidate aria-labelledby="tenant-form-title">
      <h2 id="tenant-form-title">Settings of {tenant.tenantId}</h2>
      <p>
        Usage: <TenantUsage tenant={update.data?.tenant ?? tenant} />
      </p>
      <fieldset disabled={update.isPending} className="plain-fieldset">
        <div className="field">
          <label htmlFor="tenant-zones">Zones</label>
          <textarea id="tenant-zones" rows={4} value={zones} onChange={(e) => setZones(e.target.value)} spellCheck={false} autoComplete="off" aria-describedby="tenant-zones-hint" {...invalidProps("tenant-zones-error", zoneMessages)} />
          <p id="tenant-zones-hint" className="hint">
            One domain a line: the tenant may map it and every name under it. None: any name the global rules allow.
          </p>
          <FieldErrors id="tenant-zones-error" messages={zoneMessages} />
        </div>
        <div className="field">
          <label htmlFor="tenant-quota">Mapping quota</label>
          <input id="tenant-quota" type="number" inputMode="numeric" min={0} max={UINT32_MAX} step={1} value={quota} onChange={(e) => setQuota(e.target.value)} aria-describedby="tenant-quota-hint" {...invalidProps("tenant-quota-error", quotaMessages)} />
          <p id="tenant-quota-hint" className="hint">
            The most mappings it may have; 0: no limit. Mappings it has beyond a new quota or outside new zones stay; the rules apply to later writes.
          </p>
          <FieldErrors id="tenant-quota-error" messages={quotaMessages} />
        </div>
      </fieldset>
      {errors.size > 0 ? (
        <p className="error-note" role="alert">
          Not saved: correct the marked fields.
        </p>
      ) : (
        <ErrorNote error={update.error} prefix="Not saved" />
      )}
      {update.isSuccess && <p role="status">Saved.</p>}
      <button type="submit" className="primary" disabled={update.isPending}>
        {update.isPending ? "Saving…" : "Save settings"}
      </button>
    </form>
  );
}
