import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { TenantSchema, type Tenant, type TenantService } from "../../gen/dynroute/v1/tenant_pb.js";
import { normalizeDomain } from "../domain/domain-name.js";
import { elementOf, inputError } from "../domain/errors.js";
import { checkNewTenantId } from "../domain/tenant-id.js";
import type { TenantRecord, TenantStore } from "../store/store.js";

/** TenantService: per-tenant zones and quotas, which the store enforces on every claim of a name. */
export function createTenantService({ tenants }: { tenants: TenantStore }): ServiceImpl<typeof TenantService> {
  return {
    async getTenant(req) {
      return { tenant: toProto(await tenants.getTenant(req.tenantId)) };
    },

    async listTenants() {
      return { tenants: (await tenants.listTenants()).map(toProto) };
    },

    async updateTenant(req) {
      const body = req.tenant!;
      checkNewTenantId(req.tenantId, "tenant_id");
      if (body.tenantId !== "" && body.tenantId !== req.tenantId) throw inputError("tenant.tenant_id", "tenant_id.match", "must be empty or equal the tenant_id of the request");
      const zones = body.zones.map((z, i) => {
        const at = elementOf("tenant.zones", i);
        const zone = normalizeDomain(z, at);
        if (zone.startsWith("*.")) throw inputError(at, "zone.wildcard", "a zone is a domain; it covers every name under it without a wildcard");
        return zone;
      });
      return { tenant: toProto(await tenants.putTenant(req.tenantId, { zones: [...new Set(zones)], mappingQuota: body.mappingQuota })) };
    },
  };
}

const toProto = (t: TenantRecord): Tenant => create(TenantSchema, { tenantId: t.tenantId, zones: t.zones, mappingQuota: t.mappingQuota, mappingCount: t.mappingCount });
