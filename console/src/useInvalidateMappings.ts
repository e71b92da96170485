import { createConnectQueryKey } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { AuditService } from "../../gen/dynroute/v1/audit_pb.js";
import { MappingService } from "../../gen/dynroute/v1/mapping_pb.js";

/** After a write: every cached mapping list, mapping and history page is stale. */
export function useInvalidateMappings(): () => Promise<void> {
  const queryClient = useQueryClient();
  return async () => {
    await Promise.all(
      [MappingService, AuditService].map((schema) => queryClient.invalidateQueries({ queryKey: createConnectQueryKey({ schema, cardinality: undefined }) })),
    );
  };
}
