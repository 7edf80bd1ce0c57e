// js_on_load of #tree: draws the icicle Python sends (explorer.views.tree_figure) and reports
// sector clicks and hovers; Python redraws after a click, so the tree never disagrees with the photo.
const clip = element.querySelector('.tree-clip');
const plot = element.querySelector('.tree-plot');
const hs = window.hierseg = window.hierseg || {};
const ruler = document.createElement('canvas').getContext('2d');
// A name wider than its column is wrapped on two lines, the second shortened with "…" if still too wide:
// plotly would hide it whole (uniformtext "hide") while the short "?" of an uncertain cell shows.
function shorten(text, width) {
  if (ruler.measureText(text).width <= width) return text;
  let n = text.length - 1;
  while (n > 1 && ruler.measureText(text.slice(0, n) + '…').width > width) n--;
  return text.slice(0, n) + '…';
}
function fit(text, width) {
  if (!text || ruler.measureText(text).width <= width) return text;
  const words = text.split(' ');
  let line = words[0], i = 1;
  while (i < words.length && ruler.measureText(line + ' ' + words[i]).width <= width) line += ' ' + words[i++];
  if (ruler.measureText(line).width > width || i === words.length) return shorten(text, width);
  return line + '<br>' + shorten(words.slice(i).join(' '), width);
}
function draw() {
  if (!props.value) { Plotly.purge(plot); return; }
  const fig = JSON.parse(props.value);
  // The whole image's column (left) and the superpixels' (right) show half their width: the plot is half
  // a column wider on each side than the clip around it, so the other columns share the width.
  const columns = fig.layout.meta.columns;
  const narrow = columns > 2;
  plot.style.width = narrow ? (100 * columns / (columns - 1)) + '%' : '100%';
  plot.style.marginLeft = narrow ? (-50 / (columns - 1)) + '%' : '0';
  const column = (clip.clientWidth || 300) / (narrow ? columns - 1 : columns);
  ruler.font = fig.layout.font.size + 'px "Open Sans", verdana, arial, sans-serif';
  fig.data[0].labels = fig.data[0].labels.map(text => fit(text, column - 8));
  // A touch screen has no hover: a tapped cell's tooltip would stay on screen.
  if (window.matchMedia('(hover: none)').matches) fig.layout.hovermode = false;
  Plotly.react(plot, fig.data, fig.layout, {displayModeBar: false, responsive: true});
  hs.view = fig.layout.meta;
  window.dispatchEvent(new CustomEvent('hierseg-view'));
  if (!plot._hiersegWired) {  // plot.on exists only after the first Plotly.react
    plot.on('plotly_icicleclick', ev => {
      const e = ev.event || {};  // with Ctrl/Shift/Cmd held: add the cell to the selection or take it out
      trigger('node_click', {node: ev.points[0].id, add: !!(e.ctrlKey || e.shiftKey || e.metaKey)});
      return false;  // cancel plotly's own zoom
    });
    plot.on('plotly_hover', ev => window.dispatchEvent(new CustomEvent('hierseg-hover', {detail: ev.points[0].id})));
    plot.on('plotly_unhover', () => window.dispatchEvent(new CustomEvent('hierseg-hover', {detail: null})));
    plot._hiersegWired = true;
  }
}
draw();
watch('value', draw);
