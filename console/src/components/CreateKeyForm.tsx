import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { useMutation } from "@connectrpc/connect-query";
import { useEffect, useRef, useState, type FormEvent } from "react";
import { KeyService } from "../../../gen/dynroute/v1/key_pb.js";
import { fieldViolations } from "../errors";
import { CopyButton } from "./CopyButton";
import { ErrorNote } from "./ErrorNote";
import { FieldErrors, invalidProps } from "./FieldErrors";

/** Creates a key for a tenant and role, and shows its secret: this once only. */
export function CreateKeyForm({ tenant, onCreated }: { tenant: string; onCreated(): void }) {
  const [role, setRole] = useState("editor");
  const [keyTenant, setKeyTenant] = useState(tenant);
  const [description, setDescription] = useState("");
  const [expires, setExpires] = useState("");
  const create = useMutation(KeyService.method.createKey, { onSuccess: onCreated });
  const errors = fieldViolations(create.error);
  const secretHeading = useRef<HTMLHeadingElement>(null);
  useEffect(() => secretHeading.current?.focus(), [create.data]);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate({
      tenantId: role === "admin" ? "" : keyTenant.trim(),
      role,
      description: description.trim(),
      ...(expires ? { expireTime: timestampFromDate(new Date(expires)) } : {}),
    });
  };

  if (create.data) {
    return (
      <section className="secret" aria-labelledby="secret-title">
        <h2 id="secret-title" tabIndex={-1} ref={secretHeading}>
          Key {create.data.key?.id} created
        </h2>
        <p>Copy its secret now: it is not shown again, and the daemon keeps only a hash of it.</p>
        <p>
          <code className="secret-value" aria-label="Secret">
            {create.data.secret}
          </code>
        </p>
        <CopyButton text={create.data.secret} label="Copy secret" />
        <p>
          <button type="button" onClick={() => create.reset()}>
            Done
          </button>
        </p>
      </section>
    );
  }
  return (
    <form className="create-key" onSubmit={submit} noValidate aria-labelledby="create-key-title">
      <h2 id="create-key-title">New key</h2>
      <div className="fields-row">
        <div>
          <label htmlFor="key-role">Role</label>
          <select id="key-role" value={role} onChange={(e) => setRole(e.target.value)}>
            <option value="viewer">viewer (read the tenant's mappings)</option>
            <option value="editor">editor (read and change them)</option>
            <option value="admin">admin (every tenant, keys, operations)</option>
          </select>
        </div>
        {role !== "admin" && (
          <div>
            <label htmlFor="key-tenant">Tenant</label>
            <input id="key-tenant" value={keyTenant} onChange={(e) => setKeyTenant(e.target.value)} spellCheck={false} autoComplete="off" {...invalidProps("key-tenant-error", errors.get("tenant_id"))} />
            <FieldErrors id="key-tenant-error" messages={errors.get("tenant_id")} />
          </div>
        )}
        <div>
          <label htmlFor="key-description">Description</label>
          <input id="key-description" value={description} onChange={(e) => setDescription(e.target.value)} placeholder="CI deploys of tools" {...invalidProps("key-description-error", errors.get("description"))} />
          <FieldErrors id="key-description-error" messages={errors.get("description")} />
        </div>
        <div>
          <label htmlFor="key-expires">Expires (optional, local time)</label>
          <input id="key-expires" type="datetime-local" value={expires} onChange={(e) => setExpires(e.target.value)} {...invalidProps("key-expires-error", errors.get("expire_time"))} />
          <FieldErrors id="key-expires-error" messages={errors.get("expire_time")} />
        </div>
      </div>
      {errors.size === 0 && <ErrorNote error={create.error} prefix="Not created" />}
      <button type="submit" className="primary" disabled={create.isPending}>
        Create key
      </button>
    </form>
  );
}
