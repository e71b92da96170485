import { inputError } from "./errors.js";

// Path segments the REST API uses beside /v1/{tenant_id}/…: a tenant named so could not be reached there.
const RESERVED = new Set(["admin", "audit", "keys", "tenants"]);

/** Refuses tenant ids that collide with the API's own paths; for calls that bring a tenant into being. */
export function checkNewTenantId(tenantId: string, field: string): void {
  if (RESERVED.has(tenantId.toLowerCase())) throw inputError(field, "tenant_id.reserved", `"${tenantId}" is reserved for the API's own paths; choose another tenant id`);
}
