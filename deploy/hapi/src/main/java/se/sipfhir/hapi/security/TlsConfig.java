package se.sipfhir.hapi.security;

import java.io.File;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.web.server.Ssl;
import org.springframework.boot.web.server.WebServerFactoryCustomizer;
import org.springframework.boot.web.servlet.server.ConfigurableServletWebServerFactory;
import org.springframework.stereotype.Component;

/**
 * HTTPS, and mutual TLS when a client CA is given: {@code HAPI_TLS_CERT} + {@code HAPI_TLS_KEY} (PEM)
 * turn the port into HTTPS; {@code HAPI_TLS_CLIENT_CA} (PEM bundle) makes a client certificate issued
 * by one of those CAs mandatory in the handshake (client-auth=need), so a client without one gets no
 * HTTP answer at all. Combines with HAPI_AUTH=jwt (certificate and token, as SITHS deployments do).
 */
@Component
public class TlsConfig implements WebServerFactoryCustomizer<ConfigurableServletWebServerFactory> {

	private static final Logger ourLog = LoggerFactory.getLogger(TlsConfig.class);

	private final String myCert;
	private final String myKey;
	private final String myClientCa;

	public TlsConfig(
			@Value("${sipfhir.tls.cert:}") String theCert,
			@Value("${sipfhir.tls.key:}") String theKey,
			@Value("${sipfhir.tls.client-ca:}") String theClientCa) {
		myCert = theCert.trim();
		myKey = theKey.trim();
		myClientCa = theClientCa.trim();
	}

	@Override
	public void customize(ConfigurableServletWebServerFactory theFactory) {
		if (myCert.isEmpty() && myKey.isEmpty()) {
			if (!myClientCa.isEmpty()) {
				throw new IllegalStateException("HAPI_TLS_CLIENT_CA needs HAPI_TLS_CERT and HAPI_TLS_KEY");
			}
			return;
		}
		Ssl ssl = new Ssl();
		ssl.setEnabled(true);
		ssl.setCertificate(location(myCert, "HAPI_TLS_CERT"));
		ssl.setCertificatePrivateKey(location(myKey, "HAPI_TLS_KEY"));
		if (myClientCa.isEmpty()) {
			ssl.setClientAuth(Ssl.ClientAuth.NONE);
			ourLog.info("TLS on (no client certificate required)");
		} else {
			ssl.setTrustCertificate(location(myClientCa, "HAPI_TLS_CLIENT_CA"));
			ssl.setClientAuth(Ssl.ClientAuth.NEED);
			ourLog.info("mutual TLS on: a client certificate from {} is required", myClientCa);
		}
		theFactory.setSsl(ssl);
	}

	private static String location(String thePath, String theName) {
		File file = new File(thePath);
		if (!file.isFile()) {
			throw new IllegalStateException(theName + ": no such file: " + thePath);
		}
		return "file:" + file.getAbsolutePath();
	}
}
