// A live time-series chart (uPlot): `data` in uPlot's column layout, times
// in seconds. Redraws on new data without re-creating the plot.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

const palette = ['#2563eb', '#16a34a', '#dc2626', '#9333ea', '#ea580c', '#0891b2'];

export interface ChartProps {
  title: string;
  series: string[];
  unit: string;
  data: [number[], ...number[][]];
  version: number; // bump to redraw
  height?: number;
  max?: number; // fixed y max (e.g. 100 for percent)
}

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

export function Chart(props: ChartProps) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  useEffect(() => {
    const el = host.current!;
    const axisColor = cssVar('--muted', '#666');
    const gridColor = cssVar('--grid', '#8882');
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height: props.height ?? 180,
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: props.max ? { range: [0, props.max] } : { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [
        { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor } },
        { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor }, size: 48, label: props.unit, labelSize: 14 },
      ],
      series: [
        {},
        ...props.series.map((name, i) => ({
          label: name,
          stroke: palette[i % palette.length],
          width: 1.5,
          value: (_u: uPlot, v: number | null) => (v == null ? '–' : `${v.toFixed(1)} ${props.unit}`),
        })),
      ],
    };
    plot.current = new uPlot(opts, props.data as uPlot.AlignedData, el);
    const resize = new ResizeObserver(() => {
      plot.current?.setSize({ width: Math.max(200, el.clientWidth), height: props.height ?? 180 });
    });
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [props.series.join('|'), props.unit]);

  useEffect(() => {
    plot.current?.setData(props.data as uPlot.AlignedData);
  }, [props.version]);

  return (
    <figure class="chart" data-testid="chart" data-points={props.data[0].length}>
      <figcaption>{props.title}</figcaption>
      <div ref={host} />
    </figure>
  );
}
