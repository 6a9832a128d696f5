package se.sipfhir.hapi.security;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.env.EnvironmentPostProcessor;
import org.springframework.core.env.ConfigurableEnvironment;

/**
 * Checks the auth settings as soon as application.properties is read, before HAPI's ~40 CPU-seconds of
 * start-up, so a wrong HAPI_AUTH/HAPI_JWT_* setting fails in seconds. Registered in
 * META-INF/spring.factories.
 */
public class EarlySecurityCheck implements EnvironmentPostProcessor {

	@Override
	public void postProcessEnvironment(ConfigurableEnvironment theEnv, SpringApplication theApplication) {
		try {
			SecurityConfig.interceptorFor(theEnv);
		} catch (IllegalStateException e) {
			throw e;
		} catch (Exception e) {
			throw new IllegalStateException("HAPI_AUTH=jwt: " + e.getMessage(), e);
		}
	}
}
