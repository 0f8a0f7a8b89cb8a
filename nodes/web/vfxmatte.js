// vfxmatte node pack: show what a node reports (its `ui.text`, e.g. Matte Shot's
// "24 frame(s) written ...") on the node itself, in ComfyUI's stock front end, which
// otherwise only shows images. Loaded by ComfyUI from the pack's WEB_DIRECTORY.
import { app } from "../../scripts/app.js";

const WIDGET = "vfxmatte_summary";

function showText(node, lines) {
  const text = (Array.isArray(lines) ? lines : [lines]).join("\n");
  let widget = node.widgets?.find((w) => w.name === WIDGET);
  if (!widget) {
    widget = node.addWidget("text", WIDGET, "", () => {}, { multiline: true, serialize: false });
    widget.serialize = false; // a report, not a setting: never saved into the workflow
    widget.label = "summary";
  }
  widget.value = text;
  if (widget.inputEl) {
    widget.inputEl.readOnly = true;
    widget.inputEl.value = text;
  }
  node.setDirtyCanvas?.(true, true);
}

app.registerExtension({
  name: "vfxmatte.summary",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData?.name?.startsWith("VfxMatte.")) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      if (message?.text) showText(this, message.text);
    };
  },
});
