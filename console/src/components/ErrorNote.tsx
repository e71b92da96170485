import { errorText } from "../errors";

/** A failed call, said in words and announced to screen readers. */
export function ErrorNote({ error, prefix }: { error: unknown; prefix?: string }) {
  if (!error) return null;
  return (
    <p className="error-note" role="alert">
      {prefix ? `${prefix}: ` : ""}
      {errorText(error)}
    </p>
  );
}
