import dagre from '@dagrejs/dagre'
import { useMemo } from 'react'
import type { WorkflowStepDef } from '../api/types'
import { dagEdges } from '../lib/dag'

const FILL: Record<string, [string, string]> = {
  completed: ['#dcfce7', '#166534'],
  running: ['#dbeafe', '#1e40af'],
  scheduled: ['#f1f5f9', '#334155'],
  failed: ['#fee2e2', '#991b1b'],
  waiting: ['#fef3c7', '#92400e'],
}
const NODE_W = 150
const NODE_H = 44

/** The workflow's steps as a graph (dagre layout), each coloured by its state in this run. */
export function Dag({ steps, status }: { steps: WorkflowStepDef[]; status: Record<string, string> }) {
  const layout = useMemo(() => {
    const graph = new dagre.graphlib.Graph()
    graph.setGraph({ rankdir: 'LR', nodesep: 20, ranksep: 40, marginx: 8, marginy: 8 })
    graph.setDefaultEdgeLabel(() => ({}))
    steps.forEach((step) => graph.setNode(step.id, { width: NODE_W, height: NODE_H }))
    dagEdges(steps).forEach((edge) => graph.setEdge(edge.from, edge.to))
    dagre.layout(graph)
    const label = graph.graph()
    return {
      width: label.width ?? 0,
      height: label.height ?? 0,
      nodes: steps.map((step) => ({ step, node: graph.node(step.id) })),
      edges: graph.edges().map((e) => graph.edge(e).points ?? []),
    }
  }, [steps])

  if (steps.length === 0) return <p className="text-sm text-slate-600">The definition lists no steps.</p>
  const description = steps.map((s) => `${s.id}: ${status[s.id] ?? 'not started'}`).join('; ')
  return (
    <div className="overflow-x-auto" tabIndex={0}>
      <svg
        role="img"
        aria-label={`Workflow graph. ${description}`}
        width={layout.width}
        height={layout.height}
        viewBox={`0 0 ${layout.width} ${layout.height}`}
        className="font-sans"
      >
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto">
            <path d="M0,0 L10,5 L0,10 z" fill="#64748b" />
          </marker>
        </defs>
        {layout.edges.map((points, index) => (
          <polyline
            key={index}
            points={points.map((p: { x: number; y: number }) => `${p.x},${p.y}`).join(' ')}
            fill="none"
            stroke="#64748b"
            strokeWidth={1.5}
            markerEnd="url(#arrow)"
          />
        ))}
        {layout.nodes.map(({ step, node }) => {
          const state = status[step.id]
          const [fill, ink] = FILL[state ?? ''] ?? ['#ffffff', '#334155']
          return (
            <g key={step.id} transform={`translate(${node.x - NODE_W / 2},${node.y - NODE_H / 2})`} data-testid="dag-node">
              <rect width={NODE_W} height={NODE_H} rx={6} fill={fill} stroke={ink} strokeWidth={state ? 1.5 : 1} strokeDasharray={state ? undefined : '4 3'} />
              <text x={NODE_W / 2} y={18} textAnchor="middle" fontSize={13} fontWeight={600} fill={ink}>
                {step.id.length > 20 ? `${step.id.slice(0, 19)}…` : step.id}
              </text>
              <text x={NODE_W / 2} y={34} textAnchor="middle" fontSize={11} fill={ink}>
                {state ?? 'not started'}
              </text>
            </g>
          )
        })}
      </svg>
    </div>
  )
}
