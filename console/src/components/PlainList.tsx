/** Short values (backends, DNS names, zones) one per line, without bullets. */
export function PlainList({ items }: { items: readonly string[] }) {
  return (
    <ul className="plain">
      {items.map((item) => (
        <li key={item}>{item}</li>
      ))}
    </ul>
  );
}
