package se.sipfhir.hapi.security;

import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.source.ImmutableJWKSet;
import com.nimbusds.jose.jwk.source.JWKSource;
import com.nimbusds.jose.jwk.source.JWKSourceBuilder;
import com.nimbusds.jose.proc.JWSVerificationKeySelector;
import com.nimbusds.jose.proc.SecurityContext;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.proc.DefaultJWTClaimsVerifier;
import com.nimbusds.jwt.proc.DefaultJWTProcessor;
import java.io.File;
import java.net.InetAddress;
import java.net.URI;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.Environment;
import org.springframework.core.env.PropertyResolver;

/**
 * Who may call the FHIR endpoint: {@code HAPI_AUTH=none} (default; anyone who reaches the port, which
 * by default is only this machine) or {@code HAPI_AUTH=jwt} (a bearer JWT from the region's IdP, see
 * {@link JwtAuthInterceptor}). A misspelt mode or an incomplete jwt setting stops the start-up rather
 * than running an open server, within seconds ({@link EarlySecurityCheck} checks before HAPI starts);
 * {@link FhirAuthRegistration} hands the interceptor to the server.
 * See deploy/hapi/README.md, "Security".
 */
@Configuration
public class SecurityConfig {

	private static final Logger ourLog = LoggerFactory.getLogger(SecurityConfig.class);

	// Asymmetric only: no shared secrets on the FHIR server, and no HS256/RS256 key confusion.
	private static final Set<JWSAlgorithm> ALGORITHMS = Set.of(
			JWSAlgorithm.RS256, JWSAlgorithm.RS384, JWSAlgorithm.RS512,
			JWSAlgorithm.PS256, JWSAlgorithm.PS384, JWSAlgorithm.PS512,
			JWSAlgorithm.ES256, JWSAlgorithm.ES384, JWSAlgorithm.ES512);

	private final JwtAuthInterceptor myInterceptor;

	public SecurityConfig(Environment theEnv) throws Exception {
		myInterceptor = interceptorFor(theEnv).orElse(null);
		if (myInterceptor != null) {
			String scope = theEnv.getProperty("sipfhir.jwt.required-scope", "");
			ourLog.info("FHIR auth: bearer JWT required (issuer {}, audience {}, scope {}); GET /metadata anonymous",
					theEnv.getProperty("sipfhir.jwt.issuer"), theEnv.getProperty("sipfhir.jwt.audience"),
					scope.isBlank() ? "not checked" : scope);
		} else {
			warnIfOpen(theEnv.getProperty("server.address", ""));
		}
	}

	/**
	 * The interceptor the settings ask for (empty for {@code none}); an {@link IllegalStateException}
	 * naming the setting when they are wrong. No logging: {@link EarlySecurityCheck} calls it before
	 * Spring's logging is set up.
	 */
	static Optional<JwtAuthInterceptor> interceptorFor(PropertyResolver theEnv) throws Exception {
		String mode = theEnv.getProperty("sipfhir.auth", "none");
		switch (mode.trim().toLowerCase(Locale.ROOT)) {
			case "none" -> {
				return Optional.empty();
			}
			case "jwt" -> {
				JWKSource<SecurityContext> keys = keySource(
						theEnv.getProperty("sipfhir.jwt.jwks-file", ""), theEnv.getProperty("sipfhir.jwt.jwks-url", ""));
				String issuer = require(theEnv.getProperty("sipfhir.jwt.issuer", ""), "HAPI_JWT_ISSUER");
				String audience = require(theEnv.getProperty("sipfhir.jwt.audience", ""), "HAPI_JWT_AUDIENCE");
				DefaultJWTProcessor<SecurityContext> processor = new DefaultJWTProcessor<>();
				processor.setJWSKeySelector(new JWSVerificationKeySelector<>(ALGORITHMS, keys));
				// exact iss, aud must contain ours, exp required (checked with nimbus' default 60 s skew).
				processor.setJWTClaimsSetVerifier(new DefaultJWTClaimsVerifier<>(
						audience, new JWTClaimsSet.Builder().issuer(issuer).build(), Set.of("exp")));
				String scope = theEnv.getProperty("sipfhir.jwt.required-scope", "").trim();
				return Optional.of(new JwtAuthInterceptor(processor, "sip-fhir", scope.isEmpty() ? null : scope));
			}
			default -> throw new IllegalStateException("HAPI_AUTH must be 'none' or 'jwt', not '" + mode + "'");
		}
	}

	/** The interceptor the server must run, if any. */
	public Optional<JwtAuthInterceptor> interceptor() {
		return Optional.ofNullable(myInterceptor);
	}

	private static JWKSource<SecurityContext> keySource(String theFile, String theUrl) throws Exception {
		if (!theFile.isBlank() && !theUrl.isBlank()) {
			throw new IllegalStateException("set HAPI_JWT_JWKS_FILE or HAPI_JWT_JWKS_URL, not both");
		}
		if (!theFile.isBlank()) {
			File file = new File(theFile);
			if (!file.isFile()) {
				throw new IllegalStateException("HAPI_JWT_JWKS_FILE: no such file: " + theFile);
			}
			JWKSet set = JWKSet.load(file);
			if (set.getKeys().isEmpty()) {
				throw new IllegalStateException("HAPI_JWT_JWKS_FILE has no keys: " + theFile);
			}
			return new ImmutableJWKSet<>(set.toPublicJWKSet());
		}
		if (!theUrl.isBlank()) {
			// Cached, refreshed in the background, and re-fetched when a token names an unknown kid.
			return JWKSourceBuilder.<SecurityContext>create(URI.create(theUrl).toURL()).build();
		}
		throw new IllegalStateException("HAPI_AUTH=jwt needs HAPI_JWT_JWKS_FILE or HAPI_JWT_JWKS_URL");
	}

	private static String require(String theValue, String theName) {
		if (theValue.isBlank()) {
			throw new IllegalStateException("HAPI_AUTH=jwt needs " + theName);
		}
		return theValue.trim();
	}

	private static void warnIfOpen(String theBindAddress) {
		boolean loopbackOnly;
		try {
			loopbackOnly = !theBindAddress.isBlank() && InetAddress.getByName(theBindAddress).isLoopbackAddress();
		} catch (java.net.UnknownHostException e) {
			loopbackOnly = false;
		}
		if (loopbackOnly) {
			ourLog.info("FHIR auth: none (listening on {} only)", theBindAddress);
		} else {
			ourLog.warn("FHIR auth: NONE on {}: anyone who reaches this port can read and write patient data;"
					+ " set HAPI_AUTH=jwt or bind to 127.0.0.1", theBindAddress.isBlank() ? "all interfaces" : theBindAddress);
		}
	}
}
