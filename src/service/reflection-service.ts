import { toBinary, type DescFile, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, createServiceImplSpec, type ServiceImplSpec } from "@connectrpc/connect";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha) for the given
 * services, so buf curl, grpcurl and similar tools need no local schema.
 * It is served like every other service: behind the same auth.
 */
export function createReflectionServices(served: readonly DescService[]): ServiceImplSpec[] {
  const index = new DescriptorIndex(served, [v1.ServerReflection, v1alpha.ServerReflection]);
  return [
    createServiceImplSpec<typeof v1.ServerReflection>(v1.ServerReflection, {
      async *serverReflectionInfo(requests) {
        for await (const req of requests) yield { originalRequest: req, messageResponse: index.answer(req.messageRequest) };
      },
    }),
    createServiceImplSpec<typeof v1alpha.ServerReflection>(v1alpha.ServerReflection, {
      async *serverReflectionInfo(requests) {
        for await (const req of requests) yield { originalRequest: req, messageResponse: index.answer(req.messageRequest) };
      },
    }),
  ];
}

/** The question, as both protocol versions shape it. */
type Question = v1.ServerReflectionRequest["messageRequest"] | v1alpha.ServerReflectionRequest["messageRequest"];

/** The answer, as plain values both versions accept. */
type Answer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "listServicesResponse"; value: { service: Array<{ name: string }> } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

/** Every file the served services need, indexed by name, by the symbols it declares and by the extensions it adds. */
class DescriptorIndex {
  private readonly files = new Map<string, DescFile>();
  private readonly symbols = new Map<string, DescFile>();
  /** Extended message type → extension number → declaring file. */
  private readonly extensions = new Map<string, Map<number, DescFile>>();
  private readonly encoded = new Map<DescFile, Uint8Array>();
  private readonly serviceNames: string[];

  constructor(served: readonly DescService[], reflection: readonly DescService[]) {
    const all = [...served, ...reflection];
    this.serviceNames = all.map((s) => s.typeName);
    for (const s of all) this.addFile(s.file);
  }

  answer(question: Question): Answer {
    switch (question.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: this.serviceNames.map((name) => ({ name })) } };
      case "fileByFilename":
        return this.fileAnswer(this.files.get(question.value), `file ${question.value}`);
      case "fileContainingSymbol":
        return this.fileAnswer(this.fileOfSymbol(question.value.replace(/^\./, "")), `symbol ${question.value}`);
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = question.value;
        return this.fileAnswer(this.extensions.get(containingType)?.get(extensionNumber), `extension ${extensionNumber} of ${containingType}`);
      }
      case "allExtensionNumbersOfType": {
        const numbers = this.extensions.get(question.value);
        if (!numbers && !this.symbols.has(question.value)) return notFound(`type ${question.value}`);
        return { case: "allExtensionNumbersResponse", value: { baseTypeName: question.value, extensionNumber: [...(numbers?.keys() ?? [])] } };
      }
      default:
        return { case: "errorResponse", value: { errorCode: Code.InvalidArgument, errorMessage: "the request asks nothing this server knows" } };
    }
  }

  /** A symbol, or (for methods, fields and enum values) the symbol that contains it. */
  private fileOfSymbol(symbol: string): DescFile | undefined {
    for (let name = symbol; name !== ""; name = name.slice(0, Math.max(0, name.lastIndexOf(".")))) {
      const file = this.symbols.get(name);
      if (file) return file;
    }
    return undefined;
  }

  /** The file first, then every file it depends on, transitively. */
  private fileAnswer(file: DescFile | undefined, what: string): Answer {
    if (!file) return notFound(what);
    const ordered: DescFile[] = [];
    const visit = (f: DescFile) => {
      if (ordered.includes(f)) return;
      ordered.push(f);
      f.dependencies.forEach(visit);
    };
    visit(file);
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto: ordered.map((f) => this.encode(f)) } };
  }

  private encode(file: DescFile): Uint8Array {
    let bytes = this.encoded.get(file);
    if (!bytes) this.encoded.set(file, (bytes = toBinary(FileDescriptorProtoSchema, file.proto)));
    return bytes;
  }

  private addFile(file: DescFile): void {
    if (this.files.has(file.proto.name)) return;
    this.files.set(file.proto.name, file);
    file.dependencies.forEach((dep) => this.addFile(dep));
    for (const s of file.services) this.symbols.set(s.typeName, file);
    for (const e of file.enums) this.symbols.set(e.typeName, file);
    for (const m of file.messages) this.addMessage(m, file);
    for (const ext of file.extensions) this.addExtension(ext.extendee.typeName, ext.number, ext.typeName, file);
  }

  private addMessage(message: DescMessage, file: DescFile): void {
    this.symbols.set(message.typeName, file);
    for (const m of message.nestedMessages) this.addMessage(m, file);
    for (const e of message.nestedEnums) this.symbols.set(e.typeName, file);
    for (const ext of message.nestedExtensions) this.addExtension(ext.extendee.typeName, ext.number, ext.typeName, file);
  }

  private addExtension(extendee: string, number: number, typeName: string, file: DescFile): void {
    this.symbols.set(typeName, file);
    let numbers = this.extensions.get(extendee);
    if (!numbers) this.extensions.set(extendee, (numbers = new Map()));
    numbers.set(number, file);
  }
}

const notFound = (what: string): Answer => ({ case: "errorResponse", value: { errorCode: Code.NotFound, errorMessage: `${what} not found` } });
