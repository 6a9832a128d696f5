package se.sipfhir.hapi.security;

import org.springframework.stereotype.Component;
import se.sipfhir.hapi.SipFhirRestfulServer;

/** Registers the authentication interceptor {@link SecurityConfig} chose (if any) on the FHIR server. */
@Component
public class FhirAuthRegistration {

	public FhirAuthRegistration(SecurityConfig theConfig, SipFhirRestfulServer theServer) {
		theConfig.interceptor().ifPresent(theServer::registerInterceptor);
	}
}
