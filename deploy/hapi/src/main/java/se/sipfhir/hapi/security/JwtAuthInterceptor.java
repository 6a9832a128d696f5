package se.sipfhir.hapi.security;

import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.rest.server.exceptions.AuthenticationException;
import ca.uhn.fhir.rest.server.exceptions.BaseServerResponseException;
import ca.uhn.fhir.rest.server.exceptions.ForbiddenOperationException;
import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.proc.BadJOSEException;
import com.nimbusds.jose.proc.SecurityContext;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.proc.JWTProcessor;
import java.text.ParseException;
import jakarta.servlet.http.HttpServletRequest;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Refuses every FHIR request without a valid bearer JWT (signature, exp/nbf, iss, aud) with 401 and a
 * {@code WWW-Authenticate: Bearer} challenge (RFC 6750). Only {@code GET [base]/metadata} stays
 * anonymous: the capability statement holds no patient data, and FHIR/SMART clients read it first.
 * <p>
 * Runs at {@link Pointcut#SERVER_INCOMING_REQUEST_PRE_PROCESSED}, HAPI's first hook: before it parses
 * the URL or a body or touches the database, so an anonymous caller cannot even learn which operations
 * exist. HAPI's own work (subscription matching and rest-hook delivery, batch jobs) calls the
 * DAOs directly, not this servlet, so it is unaffected.
 */
@Interceptor
public class JwtAuthInterceptor {

	private static final Logger ourLog = LoggerFactory.getLogger(JwtAuthInterceptor.class);
	private static final String BEARER = "Bearer ";

	private final JWTProcessor<SecurityContext> myProcessor;
	private final String myRealm;
	private final String myRequiredScope;

	/** @param theRequiredScope a scope the token must carry ({@code scope} or {@code scp}), or null */
	public JwtAuthInterceptor(
			JWTProcessor<SecurityContext> theProcessor, String theRealm, String theRequiredScope) {
		myProcessor = theProcessor;
		myRealm = theRealm;
		myRequiredScope = theRequiredScope;
	}

	@Hook(Pointcut.SERVER_INCOMING_REQUEST_PRE_PROCESSED)
	public boolean authenticate(HttpServletRequest theRequest) {
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
		JWTClaimsSet claims;
		try {
			claims = myProcessor.process(token, null);
		} catch (BadJOSEException | ParseException e) {
			throw refuse("invalid_token", e.getMessage());
		} catch (JOSEException e) {
			// Keys could not be read (JWKS URL down): the client is not at fault, but no access either.
			ourLog.warn("JWT verification failed: {}", e.getMessage());
			throw refuse("invalid_token", "token could not be verified");
		}
		if (myRequiredScope != null && !scopes(claims).contains(myRequiredScope)) {
			// RFC 6750: a valid token without the needed scope is 403, not 401.
			throw challenge(new ForbiddenOperationException("Forbidden: token lacks scope " + myRequiredScope),
					"insufficient_scope", "token lacks scope " + myRequiredScope);
		}
		return true;
	}

	private static List<String> scopes(JWTClaimsSet theClaims) {
		Object scope = theClaims.getClaim("scope"); // RFC 8693: space-separated string
		if (scope instanceof String text) {
			return List.of(text.trim().split("\\s+"));
		}
		Object scp = theClaims.getClaim("scp"); // some IdPs (Entra ID, Okta): a list
		if (scp instanceof List<?> list) {
			return list.stream().map(String::valueOf).toList();
		}
		return scp instanceof String text ? List.of(text.trim().split("\\s+")) : List.of();
	}

	private static boolean isAnonymousAllowed(HttpServletRequest theRequest) {
		// getPathInfo is decoded and normalised by Tomcat (no "/metadata/../Patient" tricks).
		return "GET".equals(theRequest.getMethod()) && "/metadata".equals(theRequest.getPathInfo());
	}

	private BaseServerResponseException refuse(String theError, String theReason) {
		return challenge(new AuthenticationException("Unauthorized: " + theReason), theError, theReason);
	}

	private BaseServerResponseException challenge(
			BaseServerResponseException theException, String theError, String theReason) {
		// The reason is safe to return (RFC 6750 error_description); the token itself is never logged.
		ourLog.info("{} refused FHIR request: {}", theException.getStatusCode(), theReason);
		StringBuilder challenge = new StringBuilder("Bearer realm=\"").append(myRealm).append('"');
		if (theError != null) {
			challenge.append(", error=\"").append(theError).append('"');
		}
		theException.addResponseHeader("WWW-Authenticate", challenge.toString());
		return theException;
	}
}
