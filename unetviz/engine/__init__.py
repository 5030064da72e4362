"""The builder engine: the cursor (``Tracer``) a family's builder drives, its activations, skip stack and
registration order."""
