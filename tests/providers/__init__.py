"""Providers: the transport seam, its implementations (H1, mock, httpx), provider kinds."""
