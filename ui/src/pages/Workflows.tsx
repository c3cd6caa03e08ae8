import { Link } from 'react-router'
import { useWorkflows } from '../api/queries'
import { Card } from '../components/ui/Card'
import { ProblemAlert } from '../components/ui/ProblemAlert'
import { Loading } from '../components/ui/Spinner'
import { Table, Td } from '../components/ui/Table'
import { stepsOf } from '../lib/dag'
import { formatTime } from '../lib/format'

export default function Workflows() {
  const workflows = useWorkflows()
  return (
    <div className="flex flex-col gap-4">
      <h1 className="text-2xl font-semibold">Workflows</h1>
      <Card>
        {workflows.isPending && <Loading />}
        {workflows.isError && <ProblemAlert error={workflows.error} onRetry={() => void workflows.refetch()} />}
        {workflows.data && workflows.data.length === 0 && (
          <p className="text-sm text-slate-600">
            No workflows yet. Register one with <code>omium workflows apply FILE</code>.
          </p>
        )}
        {workflows.data && workflows.data.length > 0 && (
          <Table caption="Workflows by name" head={['Name', 'Latest version', 'Steps', 'Registered', 'Changed']}>
            {workflows.data.map((w) => (
              <tr key={w.workflow_id}>
                <Td>
                  <Link className="font-medium text-indigo-700 underline" to={`/workflows/${w.workflow_id}`}>
                    {w.name}
                  </Link>
                </Td>
                <Td>v{w.latest_version}</Td>
                <Td>{stepsOf(w.definition).length}</Td>
                <Td>{formatTime(w.registered_at)}</Td>
                <Td>{formatTime(w.modified_at)}</Td>
              </tr>
            ))}
          </Table>
        )}
      </Card>
    </div>
  )
}
