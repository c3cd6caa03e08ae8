import { useEffect, useRef } from 'react'
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'

export interface ChartSeries {
  label: string
  values: (number | null)[]
  color: string
}

/** A time series chart (uPlot), with its numbers in a table for those who cannot see it. */
export function Chart({
  title,
  times,
  series,
  format = (v) => String(v),
  height = 200,
  range,
}: {
  title: string
  /** Unix seconds. */
  times: number[]
  series: ChartSeries[]
  format?: (value: number) => string
  height?: number
  /** The x axis's extent in Unix seconds (the window asked for), else the data's. */
  range?: [number, number]
}) {
  const box = useRef<HTMLDivElement>(null)
  useEffect(() => {
    const element = box.current
    if (!element) return
    const plot = new uPlot(
      {
        width: Math.max(element.clientWidth, 300),
        height,
        legend: { show: true },
        scales: range ? { x: { time: true, range: () => range } } : { x: { time: true } },
        cursor: { drag: { x: false, y: false } },
        axes: [{}, { values: (_u, ticks) => ticks.map(format), size: 70 }],
        series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, points: { show: times.length < 40 } }))],
      },
      [times, ...series.map((s) => s.values)],
      element,
    )
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(element.clientWidth, 300), height }))
    resize.observe(element)
    return () => {
      resize.disconnect()
      plot.destroy()
    }
  }, [times, series, format, height, range])

  return (
    <figure className="min-w-0">
      <figcaption className="mb-1 text-sm font-semibold">{title}</figcaption>
      {times.length === 0 ? (
        <p className="text-sm text-slate-600">No data in this window.</p>
      ) : (
        <div ref={box} role="img" aria-label={`${title}: chart of ${series.map((s) => s.label).join(', ')}`} />
      )}
      {times.length > 0 && (
        <details className="mt-1 text-xs">
          <summary className="cursor-pointer text-slate-700">Show the numbers</summary>
          <table className="mt-1">
            <caption className="sr-only">{title}</caption>
            <thead>
              <tr>
                <th scope="col" className="pr-3 text-left">Time</th>
                {series.map((s) => (
                  <th key={s.label} scope="col" className="pr-3 text-left">
                    {s.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {times.map((t, i) => (
                <tr key={t}>
                  <td className="pr-3">{new Date(t * 1000).toLocaleString()}</td>
                  {series.map((s) => (
                    <td key={s.label} className="pr-3">
                      {s.values[i] === null || s.values[i] === undefined ? '—' : format(s.values[i] as number)}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      )}
    </figure>
  )
}
