// js_on_load of #click-targets: for every superpixel, the node a click there selects in the view
// shown (explorer.views.click_targets_json); the hover bridge outlines what a click would select.
const hs = window.hierseg = window.hierseg || {};
function read() { hs.targets = props.value ? JSON.parse(props.value) : null; }
read();
watch('value', read);
