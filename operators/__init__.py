"""OfficeFlow operators, one module per integration domain."""
