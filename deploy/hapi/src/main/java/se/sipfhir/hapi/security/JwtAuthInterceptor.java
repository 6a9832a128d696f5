package se.sipfhir.hapi.security;

import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.rest.api.RequestTypeEnum;
import ca.uhn.fhir.rest.api.server.RequestDetails;
import ca.uhn.fhir.rest.server.exceptions.AuthenticationException;
import com.nimbusds.jose.proc.BadJOSEException;
import com.nimbusds.jose.proc.SecurityContext;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.proc.JWTProcessor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Refuses every FHIR request without a valid bearer JWT (signature, exp/nbf, iss, aud) with 401 and a
 * {@code WWW-Authenticate: Bearer} challenge (RFC 6750). Only {@code GET [base]/metadata} stays
 * anonymous: the capability statement holds no patient data, and FHIR/SMART clients read it first.
 * <p>
 * Runs at {@link Pointcut#SERVER_INCOMING_REQUEST_POST_PROCESSED}, before HAPI parses a body or touches
 * the database. HAPI's own work (subscription matching and rest-hook delivery, batch jobs) calls the
 * DAOs directly, not this servlet, so it is unaffected.
 */
@Interceptor
public class JwtAuthInterceptor {

	private static final Logger ourLog = LoggerFactory.getLogger(JwtAuthInterceptor.class);
	private static final String BEARER = "Bearer ";

	private final JWTProcessor<SecurityContext> myProcessor;
	private final String myRealm;

	public JwtAuthInterceptor(JWTProcessor<SecurityContext> theProcessor, String theRealm) {
		myProcessor = theProcessor;
		myRealm = theRealm;
	}

	@Hook(Pointcut.SERVER_INCOMING_REQUEST_POST_PROCESSED)
	public boolean authenticate(RequestDetails theRequest) {
		if (isAnonymousAllowed(theRequest)) {
			return true;
		}
		String header = theRequest.getHeader("Authorization");
		if (header == null || header.isBlank()) {
			throw refuse(null, "no bearer token");
		}
		if (!header.regionMatches(true, 0, BEARER, 0, BEARER.length())) {
			throw refuse("invalid_request", "Authorization is not a Bearer token");
		}
		String token = header.substring(BEARER.length()).trim();
		try {
			JWTClaimsSet claims = myProcessor.process(token, null);
			theRequest.setAttribute(JwtAuthInterceptor.class.getName() + ".subject", claims.getSubject());
			return true;
		} catch (BadJOSEException | java.text.ParseException e) {
			throw refuse("invalid_token", e.getMessage());
		} catch (com.nimbusds.jose.JOSEException e) {
			// Keys could not be read (JWKS URL down): the client is not at fault, but no access either.
			ourLog.warn("JWT verification failed: {}", e.getMessage());
			throw refuse("invalid_token", "token could not be verified");
		}
	}

	private static boolean isAnonymousAllowed(RequestDetails theRequest) {
		return theRequest.getRequestType() == RequestTypeEnum.GET && "metadata".equals(theRequest.getRequestPath());
	}

	private AuthenticationException refuse(String theError, String theReason) {
		// The reason is safe to return (RFC 6750 error_description); the token itself is never logged.
		ourLog.info("401 refused FHIR request: {}", theReason);
		StringBuilder challenge = new StringBuilder("Bearer realm=\"").append(myRealm).append('"');
		if (theError != null) {
			challenge.append(", error=\"").append(theError).append('"');
		}
		AuthenticationException e = new AuthenticationException("Unauthorized: " + theReason);
		e.addResponseHeader("WWW-Authenticate", challenge.toString());
		return e;
	}
}
