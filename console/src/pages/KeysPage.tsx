import { timestampDate } from "@bufbuild/protobuf/wkt";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useState } from "react";
import { KeyService } from "../../../gen/dynroute/v1/key_pb.js";
import { ConfirmButton } from "../components/ConfirmButton";
import { CreateKeyForm } from "../components/CreateKeyForm";
import { ErrorNote } from "../components/ErrorNote";
import { PageHeading } from "../components/PageHeading";
import { formatTime } from "../format";
import { useSession } from "../session";

/** Admins: the API keys (of the picked tenant, or all), with their last use; create and revoke. */
export function KeysPage() {
  const { session } = useSession();
  const [onlyTenant, setOnlyTenant] = useState(session.tenant !== "");
  const [showRevoked, setShowRevoked] = useState(false);
  const keys = useQuery(KeyService.method.listKeys, { tenantId: onlyTenant ? session.tenant : "", showRevoked });
  const revoke = useMutation(KeyService.method.deleteKey, { onSuccess: () => keys.refetch() });

  return (
    <>
      <PageHeading title="API keys" />
      <CreateKeyForm tenant={session.tenant} onCreated={() => keys.refetch()} />
      <h2>Keys</h2>
      <div className="filters">
        {session.tenant && (
          <label className="check">
            <input type="checkbox" checked={onlyTenant} onChange={(e) => setOnlyTenant(e.target.checked)} /> Only tenant {session.tenant}
          </label>
        )}
        <label className="check">
          <input type="checkbox" checked={showRevoked} onChange={(e) => setShowRevoked(e.target.checked)} /> Show revoked keys
        </label>
      </div>
      <ErrorNote error={keys.error} prefix="Could not list the keys" />
      <ErrorNote error={revoke.error} prefix="Not revoked" />
      {keys.data && keys.data.keys.length === 0 && <p>No keys.</p>}
      {keys.data && keys.data.keys.length > 0 && (
        <table className="keys">
          <thead>
            <tr>
              <th scope="col">Key</th>
              <th scope="col">Tenant</th>
              <th scope="col">Role</th>
              <th scope="col">Description</th>
              <th scope="col">Created</th>
              <th scope="col">Last used</th>
              <th scope="col">Expires</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {keys.data.keys.map((k) => (
              <tr key={k.id}>
                <th scope="row" data-label="Key">
                  <code>{k.id}</code>
                </th>
                <td data-label="Tenant">{k.tenantId || "all (admin)"}</td>
                <td data-label="Role">{k.role}</td>
                <td data-label="Description">{k.description}</td>
                <td data-label="Created">{formatTime(k.createTime)}</td>
                <td data-label="Last used">{k.lastUsedTime ? formatTime(k.lastUsedTime) : "never"}</td>
                <td data-label="Expires">{k.expireTime ? formatTime(k.expireTime) : "never"}</td>
                <td>
                  {k.revokeTime ? (
                    <span className="badge">revoked {formatTime(k.revokeTime)}</span>
                  ) : k.expireTime && timestampDate(k.expireTime) <= new Date() ? (
                    <span className="badge">expired {formatTime(k.expireTime)}</span>
                  ) : (
                    <ConfirmButton label="Revoke" question={`Revoke ${k.id}? Calls with it fail from now on.`} confirmLabel="Revoke" busy={revoke.isPending} onConfirm={() => revoke.mutate({ id: k.id })} />
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
