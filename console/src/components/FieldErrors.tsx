/** The server's messages for one field; the field points at them with aria-describedby={id}. */
export function FieldErrors({ id, messages }: { id: string; messages: readonly string[] | undefined }) {
  if (!messages?.length) return null;
  return (
    <p id={id} className="field-error">
      {messages.join(" ")}
    </p>
  );
}

/** Props that tie an input to its FieldErrors. */
export const invalidProps = (id: string, messages: readonly string[] | undefined) =>
  messages?.length ? { "aria-invalid": true as const, "aria-describedby": id } : {};
