"""Text: every word a member reads, the catalogs that translate them, and the extractor that fills them."""
