"""The torch side: real upstream models on the meta device, hooked forward passes of live modules, verification."""
