"""storydiff: sample the affect beats of a scene, projected onto what its characters allow."""
__version__ = "0.1.0"
