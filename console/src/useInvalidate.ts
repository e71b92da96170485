import type { DescService } from "@bufbuild/protobuf";
import { createConnectQueryKey } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";

/** After a write: every cached answer of these services is stale. */
export function useInvalidate(...services: DescService[]): () => Promise<void> {
  const queryClient = useQueryClient();
  return async () => {
    await Promise.all(services.map((schema) => queryClient.invalidateQueries({ queryKey: createConnectQueryKey({ schema, cardinality: undefined }) })));
  };
}
