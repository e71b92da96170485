import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { ApiKeySchema, type ApiKey, type KeyService } from "../../gen/dynroute/v1/key_pb.js";
import { newKeySecret, secretHash } from "../auth/api-keys.js";
import type { Authenticator } from "../auth/authenticator.js";
import { isRole } from "../auth/principal.js";
import { inputError } from "../domain/errors.js";
import { checkNewTenantId } from "../domain/tenant-id.js";
import type { KeyRecord, KeyStore } from "../store/store.js";

export interface KeyServiceDeps {
  keys: KeyStore;
  authenticator: Authenticator;
}

/** KeyService: API keys made, listed and revoked by admins (the interceptors see to that). */
export function createKeyService({ keys, authenticator }: KeyServiceDeps): ServiceImpl<typeof KeyService> {
  async function found(id: string): Promise<KeyRecord> {
    const key = await keys.findKey(id);
    if (!key) throw new ConnectError(`key ${id} not found`, Code.NotFound);
    return key;
  }

  return {
    async createKey(req) {
      if (!isRole(req.role)) throw inputError("role", "string.in", "must be admin, editor or viewer");
      if (req.role === "admin" && req.tenantId !== "") throw inputError("tenant_id", "key.admin_tenant", "must be empty for admin keys: they act on every tenant");
      if (req.role !== "admin" && req.tenantId === "") throw inputError("tenant_id", "key.tenant_required", `is required for ${req.role} keys`);
      if (req.tenantId !== "") checkNewTenantId(req.tenantId, "tenant_id");
      const now = new Date();
      const expireTime = req.expireTime && timestampDate(req.expireTime);
      if (expireTime && expireTime <= now) throw inputError("expire_time", "key.expire_future", "must be in the future");
      const { id, secret } = newKeySecret();
      const record: KeyRecord = { id, tenantId: req.tenantId, role: req.role, description: req.description, secretHash: secretHash(secret), createTime: now, expireTime };
      await keys.insertKey(record);
      return { key: toProto(record), secret };
    },

    async listKeys(req) {
      const list = await keys.listKeys({ ...(req.tenantId === "" ? {} : { tenantId: req.tenantId }), showRevoked: req.showRevoked });
      return { keys: list.map(toProto) };
    },

    async getKey(req) {
      return { key: toProto(await found(req.id)) };
    },

    async deleteKey(req) {
      if (!(await keys.revokeKey(req.id, new Date()))) throw new ConnectError(`key ${req.id} not found`, Code.NotFound);
      // Other replicas drop it when their cached copy ages out (within a second).
      authenticator.forget(req.id);
      return {};
    },
  };
}

function toProto(k: KeyRecord): ApiKey {
  return create(ApiKeySchema, {
    id: k.id,
    tenantId: k.tenantId,
    role: k.role,
    description: k.description,
    createTime: timestampFromDate(k.createTime),
    expireTime: k.expireTime && timestampFromDate(k.expireTime),
    lastUsedTime: k.lastUsedTime && timestampFromDate(k.lastUsedTime),
    revokeTime: k.revokeTime && timestampFromDate(k.revokeTime),
  });
}
