import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { projectRoot } from '../../project.js'
import { ConfigSchema } from '../../schemas/config.js'
import { build } from '../helper.js'

const dir = join(projectRoot(), 'kubernetes')

interface Manifest { apiVersion: string, kind: string, metadata: { name: string }, spec: any }

/** Every document of every manifest, parsed; a YAML error fails here. */
function manifests (): Array<{ file: string, doc: Manifest }> {
  return readdirSync(dir).filter(f => f.endsWith('.yaml')).flatMap(file =>
    parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map(document => {
      if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0].message}`)
      return { file, doc: document.toJS() as Manifest }
    }))
}

/** The kubernetes-models class for a document: `apps/v1` + `Deployment` -> kubernetes-models/apps/v1. */
async function modelOf (doc: Manifest) {
  const module = await import(`kubernetes-models/${doc.apiVersion}`) as Record<string, new (data: unknown) => { validate (): void }>
  const Model = module[doc.kind]
  if (Model === undefined) throw new Error(`no model for ${doc.apiVersion} ${doc.kind}`)
  return Model
}

const all = manifests()
const one = (kind: string) => {
  const found = all.filter(m => m.doc.kind === kind)
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`)
  return found[0].doc
}

t.test('every document is a valid Kubernetes object (kubernetes-models schemas, offline)', async t => {
  t.same(all.map(m => m.doc.kind).sort(), ['Deployment', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Service'])
  for (const { file, doc } of all) {
    const Model = await modelOf(doc)
    t.doesNotThrow(() => new Model(doc).validate(), `${file}: ${doc.kind}`)
  }
})

t.test('the validation catches a broken manifest', async t => {
  const deployment = structuredClone(one('Deployment'))
  deployment.spec.template.spec.containers[0].ports[0].containerPort = 'five thousand'
  const Model = await modelOf(deployment)
  t.throws(() => new Model(deployment).validate())
})

const deployment = one('Deployment')
const pod = deployment.spec.template.spec
const [container] = pod.containers
const env = Object.fromEntries(container.env.map((e: { name: string, value?: string }) => [e.name, e.value]))

t.test('the environment names only variables the configuration declares', async t => {
  for (const name of Object.keys(env)) t.ok(name in ConfigSchema.properties, name)
})

t.test('WORKERS follows the CPU limit', async t => {
  const workers = container.env.find((e: { name: string }) => e.name === 'WORKERS')
  t.same(workers.valueFrom.resourceFieldRef, { resource: 'limits.cpu', divisor: '1' })
  t.ok(container.resources.limits.cpu, 'there is a CPU limit to follow')
})

t.test('ports: the container listens where the service says and the Service targets it', async t => {
  const [port] = container.ports
  t.equal(port.containerPort, Number(env.PORT))
  t.equal(port.containerPort, ConfigSchema.properties.PORT.default)
  t.equal(env.HOST, '0.0.0.0')
  const service = one('Service')
  t.equal(service.spec.ports[0].targetPort, port.name)
})

t.test('Prometheus scrapes METRICS_PORT: the annotation, the container port and the setting agree, and the app serves /metrics there', async t => {
  const annotations = deployment.spec.template.metadata.annotations
  const metricsPort = container.ports.find((p: { name: string }) => p.name === 'metrics')
  t.ok(metricsPort, 'the container declares the metrics port')
  t.equal(Number(env.METRICS_PORT), metricsPort.containerPort)
  t.equal(Number(annotations['prometheus.io/port']), metricsPort.containerPort)
  t.equal(annotations['prometheus.io/path'], '/metrics')
  t.notOk(one('Service').spec.ports.some((p: { targetPort: unknown }) => p.targetPort === 'metrics' || p.targetPort === metricsPort.containerPort), 'the Service does not expose it')
  const app = await build(t, { METRICS_PORT: '0' })
  t.equal((await app.inject('/metrics')).statusCode, 404, 'with METRICS_PORT set, the API\'s port has no /metrics')
  const { port } = app.metricsServer!.address() as { port: number }
  t.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 200, 'its own listener has')
})

t.test('probes point at routes the app answers 200', async t => {
  const app = await build(t)
  t.equal(container.livenessProbe.httpGet.path, '/health')
  t.equal(container.readinessProbe.httpGet.path, '/ready')
  for (const probe of [container.livenessProbe, container.readinessProbe, container.startupProbe]) {
    t.equal(probe.httpGet.port, container.ports[0].name)
    const res = await app.inject({ method: 'GET', url: probe.httpGet.path })
    t.equal(res.statusCode, 200, probe.httpGet.path)
  }
})

t.test('the grace period covers the preStop sleep and the server\'s drain', async t => {
  const [command, seconds] = container.lifecycle.preStop.exec.command
  t.equal(command, 'sleep')
  const drain = Number(env.SHUTDOWN_TIMEOUT_MS ?? ConfigSchema.properties.SHUTDOWN_TIMEOUT_MS.default) / 1000
  t.ok(pod.terminationGracePeriodSeconds > Number(seconds) + drain, `${pod.terminationGracePeriodSeconds} s > ${seconds} s + ${drain} s`)
  t.ok(Number(env.NOTIFY_DRAIN_TIMEOUT_MS) / 1000 < drain, 'notifications drain within the shutdown')
})

t.test('spilled notifications go to a volume; the pod runs as non-root with a read-only root', async t => {
  const mount = container.volumeMounts.find((m: { mountPath: string }) => m.mountPath === env.NOTIFY_DATA_DIR)
  t.ok(mount, 'NOTIFY_DATA_DIR is a mounted volume')
  t.ok(pod.volumes.some((v: { name: string }) => v.name === mount.name))
  t.equal(pod.securityContext.runAsNonRoot, true)
  t.equal(container.securityContext.readOnlyRootFilesystem, true)
  t.equal(container.securityContext.allowPrivilegeEscalation, false)
  t.ok(container.resources.requests.cpu && container.resources.limits.memory)
})

t.test('the Service, the budget and the autoscaler select this Deployment\'s pods', async t => {
  const labels = deployment.spec.template.metadata.labels
  t.same(deployment.spec.selector.matchLabels, labels)
  t.same(one('Service').spec.selector, labels)
  t.same(one('PodDisruptionBudget').spec.selector.matchLabels, labels)
  const hpa = one('HorizontalPodAutoscaler')
  t.same(hpa.spec.scaleTargetRef, { apiVersion: deployment.apiVersion, kind: 'Deployment', name: deployment.metadata.name })
  t.ok(hpa.spec.minReplicas >= 2, 'the budget can let one pod go and keep serving')
})
