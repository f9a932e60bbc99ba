// Parsing of how a Service selects endpoints: spec.sessionAffinity with
// sessionAffinityConfig.clientIP.timeoutSeconds, and the
// service.ferry.io/lb-algorithm annotation.
#include <gtest/gtest.h>

#include "model/manifest.h"
#include "test_util.h"

namespace ferry {
namespace {

using test::errorStrings;
using test::errorsText;
using test::serviceYaml;

Manifests parse(const std::string& spec, const std::string& annotations = "") {
  std::string yaml = serviceYaml("web", spec + "  ports: [{port: 80}]\n");
  if (!annotations.empty())
    yaml.replace(yaml.find("spec:"), 0, "  annotations: {" + annotations + "}\n");
  return parseManifests({{"svc.yaml", yaml}});
}

TEST(SessionAffinity, NoneByDefault) {
  Manifests m = parse("");
  ASSERT_EQ(errorsText(m.errors), "");
  EXPECT_EQ(m.services.at(0).sessionAffinityTimeout, 0u);
  EXPECT_EQ(parse("  sessionAffinity: None\n").services.at(0).sessionAffinityTimeout, 0u);
}

TEST(SessionAffinity, ClientIPDefaultsToThreeHours) {
  Manifests m = parse("  sessionAffinity: ClientIP\n");
  ASSERT_EQ(errorsText(m.errors), "") << "no 'not implemented' warning any more";
  EXPECT_EQ(m.services.at(0).sessionAffinityTimeout, 10800u);
}

TEST(SessionAffinity, TimeoutSeconds) {
  Manifests m = parse(
      "  sessionAffinity: ClientIP\n"
      "  sessionAffinityConfig: {clientIP: {timeoutSeconds: 86400}}\n");
  ASSERT_EQ(errorsText(m.errors), "");
  EXPECT_EQ(m.services.at(0).sessionAffinityTimeout, 86400u);
}

TEST(SessionAffinity, BadValuesNameFileObjectAndField) {
  EXPECT_EQ(errorStrings(parse("  sessionAffinity: ClientIP\n"
                               "  sessionAffinityConfig: {clientIP: {timeoutSeconds: 86401}}\n")
                             .errors),
            std::vector<std::string>{
                "svc.yaml: Service default/web: spec.sessionAffinityConfig.clientIP.timeoutSeconds: "
                "must be between 1 and 86400 seconds, got 86401"});
  EXPECT_EQ(errorStrings(parse("  sessionAffinity: ClientIP\n"
                               "  sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}\n")
                             .errors)
                .size(),
            1u);
  EXPECT_EQ(errorStrings(parse("  sessionAffinity: Cookie\n").errors),
            std::vector<std::string>{"svc.yaml: Service default/web: spec.sessionAffinity: must be "
                                     "\"ClientIP\" or \"None\", got \"Cookie\""});
  EXPECT_EQ(errorStrings(parse("  sessionAffinityConfig: {clientIP: {timeoutSeconds: 5}}\n").errors),
            std::vector<std::string>{"svc.yaml: Service default/web: spec.sessionAffinityConfig: "
                                     "must not be set when spec.sessionAffinity is None"});
}

TEST(LbAlgorithm, AnnotationIsMaglevOrRandom) {
  EXPECT_EQ(errorsText(parse("", "service.ferry.io/lb-algorithm: maglev").errors), "");
  EXPECT_EQ(errorsText(parse("", "service.ferry.io/lb-algorithm: random").errors), "");
  EXPECT_EQ(errorStrings(parse("", "service.ferry.io/lb-algorithm: ring").errors),
            std::vector<std::string>{
                "svc.yaml: Service default/web: metadata.annotations[service.ferry.io/lb-algorithm]: "
                "must be \"maglev\" or \"random\", got \"ring\""});
}

}  // namespace
}  // namespace ferry
