#!/usr/bin/perl
# SpamAssassin's side of bench/rules: load a rule folder once, then check one message again and
# again through the API (what spamd does per message, without the socket), timing each pass.
# Prints one JSON object.
#
# usage: rules_spamassassin.pl RULES_DIR SITE_DIR MESSAGE ITERATIONS
#   RULES_DIR  the rules (as spamassassin -C), SITE_DIR the .pre files and site settings
#              (as --siteconfigpath); no user preferences, no network tests.
use strict;
use warnings;
use Mail::SpamAssassin;
use Time::HiRes qw(time);
use JSON::PP;

my ($rules, $site, $file, $iterations) = @ARGV;
die "usage: $0 RULES_DIR SITE_DIR MESSAGE ITERATIONS\n" unless defined $iterations;

my $t0 = time;
my $sa = Mail::SpamAssassin->new({
  rules_filename => $rules, site_rules_filename => $site, userprefs_filename => '/dev/null',
  dont_copy_prefs => 1, local_tests_only => 1,
});
$sa->compile_now(0);
my $load_ms = (time - $t0) * 1000;

open my $fh, '<:raw', $file or die "$file: $!";
my $text = do { local $/; <$fh> };
close $fh;

sub check_once {
  my $msg = $sa->parse($text);
  my $status = $sa->check($msg);
  my @hits = sort grep { !/^__/ } split /,/, $status->get_names_of_tests_hit();
  my $score = $status->get_score();
  $status->finish;
  $msg->finish;
  return (\@hits, $score);
}

my ($hits, $score) = check_once();    # warm-up, as bench/rules_bench does
my @times;
for (1 .. $iterations) {
  my $start = time;
  ($hits, $score) = check_once();
  push @times, (time - $start) * 1000;
}
my @sorted = sort { $a <=> $b } @times;
my $sum = 0;
$sum += $_ for @times;
print JSON::PP->new->canonical->encode({
  load_ms => $load_ms, bytes => length($text), iterations => scalar(@times),
  ms_median => $sorted[int(@sorted / 2)], ms_mean => $sum / @times, ms_min => $sorted[0],
  score => $score + 0, hits => $hits,
}), "\n";
