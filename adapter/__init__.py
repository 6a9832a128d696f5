"""sip-fhir: SIP, patientkontrakt and Prea60 follow-up as FHIR R4."""

__version__ = "0.1.0"
