"""Training recipe for throatseg's segmentation and embedding models."""
