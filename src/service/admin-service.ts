import type { ServiceImpl } from "@connectrpc/connect";
import type { AdminService } from "../../gen/dynroute/v1/admin_pb.js";
import type { Reconciler } from "../sync/reconciler.js";

export function createAdminService({ reconciler }: { reconciler: Reconciler }): ServiceImpl<typeof AdminService> {
  return {
    async reconcile() {
      const r = await reconciler.run("requested");
      return { pushed: BigInt(r.pushed), updated: BigInt(r.updated), retired: BigInt(r.retired), durationMs: BigInt(r.ms) };
    },
  };
}
