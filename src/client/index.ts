/**
 * The typed client for dynroute, for programs outside this checkout:
 * `import { createDynrouteClients } from "dynroute/client"`. The generated
 * messages and services come along, so requests and answers are typed.
 */
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { AdminService } from "../../gen/dynroute/v1/admin_pb.js";
import { AuditService } from "../../gen/dynroute/v1/audit_pb.js";
import { CertificateService } from "../../gen/dynroute/v1/certificate_pb.js";
import { KeyService } from "../../gen/dynroute/v1/key_pb.js";
import { MappingService } from "../../gen/dynroute/v1/mapping_pb.js";
import { TenantService } from "../../gen/dynroute/v1/tenant_pb.js";

export * from "../../gen/dynroute/v1/admin_pb.js";
export * from "../../gen/dynroute/v1/audit_pb.js";
export * from "../../gen/dynroute/v1/certificate_pb.js";
export * from "../../gen/dynroute/v1/key_pb.js";
export * from "../../gen/dynroute/v1/mapping_pb.js";
export * from "../../gen/dynroute/v1/tenant_pb.js";

export type Protocol = "connect" | "grpc" | "grpc-web";

export interface DynrouteTransportOptions {
  /** Where the daemon listens, e.g. "http://127.0.0.1:8080" (https:// with TLS). */
  baseUrl: string;
  /** The token (API key) sent with every call as `Authorization: Bearer <apiKey>`. */
  apiKey: string;
  /** Default "connect". gRPC always uses HTTP/2 (h2c in cleartext). */
  protocol?: Protocol;
  /** For Connect and gRPC-Web: "1.1" (default) or "2". */
  httpVersion?: "1.1" | "2";
  /** More interceptors, run after the one that adds the key. */
  interceptors?: Interceptor[];
}

/** A transport to the daemon in the chosen protocol, sending the key on every call. */
export function createDynrouteTransport(opts: DynrouteTransportOptions): Transport {
  const authorization = `Bearer ${opts.apiKey}`;
  const withKey: Interceptor = (next) => (req) => {
    req.header.set("authorization", authorization);
    return next(req);
  };
  const interceptors = [withKey, ...(opts.interceptors ?? [])];
  const httpVersion = opts.httpVersion ?? "1.1";
  switch (opts.protocol ?? "connect") {
    case "connect":
      return createConnectTransport({ baseUrl: opts.baseUrl, httpVersion, interceptors });
    case "grpc":
      return createGrpcTransport({ baseUrl: opts.baseUrl, interceptors });
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl: opts.baseUrl, httpVersion, interceptors });
  }
}

/** Clients of every dynroute service over one transport. */
export interface DynrouteClients {
  mappings: Client<typeof MappingService>;
  keys: Client<typeof KeyService>;
  audit: Client<typeof AuditService>;
  tenants: Client<typeof TenantService>;
  admin: Client<typeof AdminService>;
  certificates: Client<typeof CertificateService>;
}

export function createDynrouteClients(opts: DynrouteTransportOptions): DynrouteClients {
  const transport = createDynrouteTransport(opts);
  return {
    mappings: createClient(MappingService, transport),
    keys: createClient(KeyService, transport),
    audit: createClient(AuditService, transport),
    tenants: createClient(TenantService, transport),
    admin: createClient(AdminService, transport),
    certificates: createClient(CertificateService, transport),
  };
}
