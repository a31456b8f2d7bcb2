// Probes and scrapers must keep answering whatever the load or the client: no rate limit, no shedding.
const PROBE_PATHS = new Set(['/health', '/ready', '/ping', '/metrics'])

export const isProbe = (url: string) => PROBE_PATHS.has(url.split('?')[0])
