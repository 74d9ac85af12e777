"""Why one model beats another: where each model looks (occlusion, Grad-CAM), how it embeds the
examples, which examples it gets wrong, and one self-contained HTML report of it all."""
