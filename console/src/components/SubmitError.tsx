import { ErrorNote } from "./ErrorNote";

/** Why a form's write failed: its fields' errors (shown at each field) are pointed to; any other error is said. */
export function SubmitError({ fieldErrors, error, prefix }: { fieldErrors: number; error: unknown; prefix: string }) {
  if (fieldErrors === 0) return <ErrorNote error={error} prefix={prefix} />;
  return (
    <p className="error-note" role="alert">
      {prefix}: correct the marked fields.
    </p>
  );
}
