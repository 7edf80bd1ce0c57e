// js_on_load of #tree: draws the icicle Python sends (explorer.views.tree_figure) and reports
// sector clicks and hovers; Python redraws after a click, so the tree never disagrees with the photo.
const plot = element.querySelector('.tree-plot');
const hs = window.hierseg = window.hierseg || {};
function draw() {
  if (!props.value) { Plotly.purge(plot); return; }
  const fig = JSON.parse(props.value);
  Plotly.react(plot, fig.data, fig.layout, {displayModeBar: false, responsive: true});
  hs.view = fig.layout.meta;
  window.dispatchEvent(new CustomEvent('hierseg-view'));
  if (!plot._hiersegWired) {  // plot.on exists only after the first Plotly.react
    plot.on('plotly_icicleclick', ev => {
      trigger('node_click', {node: ev.points[0].id});
      return false;  // cancel plotly's own zoom
    });
    plot.on('plotly_hover', ev => window.dispatchEvent(new CustomEvent('hierseg-hover', {detail: ev.points[0].id})));
    plot.on('plotly_unhover', () => window.dispatchEvent(new CustomEvent('hierseg-hover', {detail: null})));
    plot._hiersegWired = true;
  }
}
draw();
watch('value', draw);
