export default async function globalTeardown(): Promise<void> {
  await Promise.all((globalThis.__switchboardContainers ?? []).map((c) => c.stop()));
}
